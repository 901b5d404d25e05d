"""The command line's options: value types with one-line errors, and the parser of each command.

Options that several commands share (``--backend``, ``--seed``, ``--checkpoint``, ``--data-dir``)
are defined once, in parent parsers. Options that override a model preset are listed in
:data:`MODEL_OPTIONS`, by the :class:`~tinygan.models.config.GANConfig` field they set.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np

from ..data import DATASETS
from ..engine.layers import Dense
from ..engine.network import count_params, mlp
from ..io.errors import UsageError
from ..io.memory import check_fits
from ..models.conditioning import input_sizes
from ..models.config import ACTIVATIONS, CONDITIONINGS, LOSSES, PRESETS, GANConfig
from ..models.vae_config import VAE_PRESETS, VAEConfig
from ..training.runs import RunSettings


def _number(kind: type, text: str, expected: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def _positive_int(text: str) -> int:
    value = _number(int, text, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _at_least_two(text: str) -> int:
    """A count of at least 2: a covariance or a class histogram of fewer samples means nothing, a walk has two ends."""
    value = _number(int, text, "an integer of at least 2")
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 2, got {text}")
    return value


def _count(text: str) -> int:
    value = _number(int, text, "a non-negative integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = _number(float, text, "a positive number")
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _int_list(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer sizes like 256,512, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive layer sizes, got {text!r}")
    return sizes


def _batchnorm(text: str) -> bool | list[bool]:
    words = {"yes": True, "no": False, "1": True, "0": False, "true": True, "false": False}
    flags = [words.get(w.strip().lower()) for w in text.split(",")]
    if None in flags:
        raise argparse.ArgumentTypeError(
            f"expected yes/no, or one yes/no per hidden layer like no,yes,yes, got {text!r}"
        )
    return flags[0] if len(flags) == 1 else flags


def _probability(text: str) -> float:
    value = _number(float, text, "a number in [0, 1)")
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value


def _label(text: str) -> float:
    value = _number(float, text, "a number in (0.5, 1]")
    if not 0.5 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0.5, 1], got {text}")
    return value


def _non_negative(text: str) -> float:
    value = _number(float, text, "a number >= 0")
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _yes_no(text: str) -> bool:
    words = {"yes": True, "no": False, "1": True, "0": False, "true": True, "false": False}
    if text.strip().lower() not in words:
        raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")
    return words[text.strip().lower()]


def _loss(text: str) -> str:
    if text not in LOSSES:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(LOSSES)}, got {text!r}")
    return text


def _betas(text: str) -> tuple[float, float]:
    try:
        betas = tuple(float(b) for b in text.split(","))
    except ValueError:
        betas = ()
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        raise argparse.ArgumentTypeError(f"expected two numbers in [0, 1) like 0.5,0.999, got {text!r}")
    return betas


def _conditioning(text: str) -> str:
    if text not in CONDITIONINGS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(CONDITIONINGS)}, got {text!r}")
    return text


def _activation(text: str) -> str:
    if text not in ACTIVATIONS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(ACTIVATIONS)}, got {text!r}")
    return text


# Options that override a preset's GANConfig or VAEConfig field of the same name.
MODEL_OPTIONS = {
    "latent_dim": (_positive_int, "size of the latent vector z"),
    "g_hidden": (_int_list, "generator hidden sizes, e.g. 128,256,512,1024"),
    "d_hidden": (_int_list, "discriminator hidden sizes, e.g. 512,256"),
    "g_activation": (_activation, f"generator hidden activation: {', '.join(ACTIVATIONS)}"),
    "d_activation": (_activation, f"discriminator hidden activation: {', '.join(ACTIVATIONS)}"),
    "maxout_pieces": (_positive_int, "linear pieces per unit where an activation is maxout"),
    "g_batchnorm": (_batchnorm, "BatchNorm in generator hidden layers: yes, no, or one per layer"),
    "d_batchnorm": (_batchnorm, "BatchNorm in discriminator hidden layers: yes, no, or one per layer"),
    "d_dropout": (_probability, "dropout probability after each discriminator hidden layer"),
    "real_label": (_label, "target for real samples in D's loss (0.9 = one-sided label smoothing)"),
    "lr_g": (_positive_float, "generator Adam learning rate"),
    "lr_d": (_positive_float, "discriminator Adam learning rate"),
    "lr_decay": (_positive_float, "both learning rates decay exponentially to this fraction by the last step"),
    "g_ema_decay": (_probability, "decay of the moving average of G's weights used for sampling (0 = off)"),
    "pack": (_positive_int, "PacGAN packing: D judges this many samples at once (1 = off)"),
    "loss": (_loss, f"objective of the game: {', '.join(LOSSES)}"),
    "n_critic": (_positive_int, "D updates per G update, each on a batch of its own"),
    "gp_weight": (_positive_float, "weight λ of the WGAN-GP penalty λ(‖∇D(x̂)‖ − 1)²"),
    "r1_gamma": (_non_negative, "weight γ of the R1 penalty γ/2·‖∇D(x)‖² on real data (0 = off)"),
    "wgan_clip": (_non_negative, "loss wgan clips D's parameters to ± this (0 = off)"),
    "d_spectral_norm": (_yes_no, "spectral normalisation of D's Dense layers: yes or no"),
    "betas": (_betas, "Adam's β₁,β₂ for both networks, e.g. 0.5,0.999"),
    "conditioning": (_conditioning, "with --conditional, how D sees the class: concat (one-hot beside the image) "
                     "or projection (⟨embedding, features⟩ added to D's logit) [default: projection]"),
    "batch_size": (_positive_int, "batch size [default: the preset's, 64]"),
    "enc_hidden": (_int_list, "VAE encoder hidden sizes, e.g. 512,256"),
    "dec_hidden": (_int_list, "VAE decoder hidden sizes, e.g. 256,512"),
    "lr": (_positive_float, "VAE Adam learning rate (both networks)"),
}
RUN_DEFAULTS = {name: RunSettings.__dataclass_fields__[name].default for name in RunSettings.CADENCES}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the empty ones (None, False) that only mean "not given"."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help or ""
        return super()._get_help_string(action)


# Earlier names of model options, still accepted.
OLD_SPELLINGS = {"g_ema_decay": ("--g-ema",)}


def _shared_options() -> dict[str, argparse.ArgumentParser]:
    """One parent parser per option that several commands share."""
    parents = {name: argparse.ArgumentParser(add_help=False) for name in ("backend", "seed", "checkpoint", "data")}
    parents["backend"].add_argument(
        "--backend", default=None, help="numpy or cupy (default: $TINYGAN_BACKEND, else numpy)"
    )
    parents["seed"].add_argument(
        "--seed", type=_count, default=None, help="random seed [default: 0; a resumed run keeps its own]"
    )
    parents["checkpoint"].add_argument("--checkpoint", required=True, help="RUN_DIR/checkpoint.npz (or RUN_DIR)")
    parents["data"].add_argument("--data-dir", default=None, help="folder holding MNIST/Fashion-MNIST IDX files")
    return parents


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinygan", description="Train and sample GANs and VAEs on NumPy or CuPy with hand-written backprop."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,sample,eval}")
    shared, fmt = _shared_options(), _HelpFormatter
    train = sub.add_parser(
        "train", help="train a GAN or a VAE and write samples, metrics and checkpoints", formatter_class=fmt,
        parents=[shared["data"], shared["backend"], shared["seed"]],
    )
    _train_options(train)
    sample = sub.add_parser(
        "sample", help="generate samples from a checkpoint", formatter_class=fmt,
        parents=[shared["checkpoint"], shared["data"], shared["backend"], shared["seed"]],
    )
    sample.add_argument("-n", type=_positive_int, default=None, help=(
        "number of samples, of images to reconstruct, or of rows with --interpolate [default: 64; 8 rows]"
    ))
    sample.add_argument("--class", dest="classes", default=None, metavar="C", help=(
        "a conditional model's class(es) to draw: a name or number, or several separated by commas "
        "(sneaker, 7, 3,5), case-insensitive [default: every class, spread evenly]"
    ))
    sample.add_argument("--interpolate", type=_at_least_two, default=None, metavar="K", help=(
        "draw -n rows of K images, each walking along the great circle between two random latents"
    ))
    sample.add_argument("--out", required=True, help=".png (a grid or point plot) or .npy (floats, images in [0, 1])")
    sample.add_argument("--reconstruct", default=None, metavar="SOURCE", help=(
        "VAE: reconstruct the first -n images of SOURCE, a .npy/.npz file or a dataset name (its test split), "
        "instead of sampling; .png shows originals above reconstructions"
    ))
    sample.add_argument("--noise", type=_probability, default=None, metavar="P", help=(
        "with --reconstruct: replace each pixel by black or white with probability P first (denoising)"
    ))
    evaluate = sub.add_parser(
        "eval", help="measure a trained model's samples; prints JSON", formatter_class=fmt,
        parents=[shared["checkpoint"], shared["data"], shared["backend"], shared["seed"]],
    )
    evaluate.add_argument("--n", type=_at_least_two, default=None, help=(
        "number of generated samples, at least 2 [default: 10000 for images, 2500 for 2-D points]"
    ))
    evaluate.add_argument("--dataset", default=None, help="the data to measure against: a dataset name, "
                          "a .npy/.npz file or a folder of PNG files [default: the run's own]")
    return parser


def _train_options(train: argparse.ArgumentParser) -> None:
    train.add_argument(
        "--dataset", default=None,
        help=f"dataset name ({', '.join(DATASETS)}), a path to a .npy/.npz file of shape (N, D), (N, H, W) or "
        "(N, H, W, C), or a folder of PNG files (classes from its sub-folders) [default: digits]",
    )
    train.add_argument("--n-train", type=_positive_int, default=None, help="use only the first N training samples")
    train.add_argument("--model", default=None, choices=sorted({*PRESETS, *VAE_PRESETS}),
                       help="model preset: a GAN, or vae for a variational autoencoder [default: default]")
    length = train.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=_positive_float, default=None, help="passes over the data [default: 5]")
    length.add_argument("--steps", type=_positive_int, default=None, help="training steps (overrides --epochs)")
    train.add_argument("--out", default=None, help=(
        "run folder [default: runs/<dataset>-<model>, or runs/<dataset>-<model>-conditional, numbered if taken]"
    ))
    train.add_argument("--resume", default=None, metavar="RUN_DIR", help=(
        "continue the run saved in RUN_DIR with its data, model and settings; "
        "--steps/--epochs, --lr-g, --lr-d, --real-label and the cadences may be given anew"
    ))
    every = "; a resumed run keeps its own unless given"
    for name, text in (
        ("log_every", "steps between metric records"),
        ("sample_every", "steps between samples.png refreshes"),
        ("checkpoint_every", "steps between checkpoints"),
        ("eval_every", "steps between Fréchet-distance records in metrics.jsonl (digits, mnist, fashion-mnist)"),
    ):
        train.add_argument(
            "--" + name.replace("_", "-"), type=_positive_int, default=None,
            help=f"{text} [default: {RUN_DEFAULTS[name]}{every}]",
        )
    train.add_argument("--no-eval", action="store_true", help="skip the quality metrics at the end (eval.json)")
    train.add_argument("--conditional", action="store_const", const=True, default=None, help=(
        "a class-conditional GAN: G and D are given each image's class, from the dataset's labels "
        "(digits, mnist, fashion-mnist, or an .npz holding x, y and optionally names)"
    ))
    model = train.add_argument_group("model options (override the preset)")
    for name, (kind, text) in MODEL_OPTIONS.items():
        flags = ["--" + name.replace("_", "-"), *OLD_SPELLINGS.get(name, ())]
        model.add_argument(*flags, dest=name, type=kind, default=None, help=text)


# -- what model options ask for --------------------------------------------------------------

# Options that decide how much memory a model takes, named when it cannot have it.
SIZE_OPTIONS = ("g_hidden", "d_hidden", "enc_hidden", "dec_hidden", "latent_dim", "pack", "maxout_pieces",
                "batch_size")


def model_memory(config: GANConfig | VAEConfig) -> tuple[int, int]:
    """(bytes, parameters) of training a GAN or VAE of ``config``, roughly: what its options ask for.

    Each parameter is held up to six times in a GAN (value, gradient, two Adam moments, the
    average and its gradient buffer), four in a VAE (no average); each Dense output of a batch
    about eight times (forward values, their gradients, BatchNorm and activation temporaries).
    """
    c = config
    if isinstance(c, VAEConfig):
        nets = [mlp([c.data_dim, *c.enc_hidden, 2 * c.latent_dim], c.activation),
                mlp([c.latent_dim, *c.dec_hidden, c.data_dim], c.activation)]
        copies, table = 4, 0
    else:
        g_in, d_in = input_sizes(c)
        nets = [mlp([g_in, *c.g_hidden, c.data_dim], c.g_activation, c.g_output, c.g_batchnorm, pieces=c.maxout_pieces),
                mlp([d_in, *c.d_hidden, 1], c.d_activation, None, c.d_batchnorm, pieces=c.maxout_pieces)]
        projects = c.n_classes and c.conditioning == "projection"
        copies, table = 6, c.n_classes * c.d_hidden[-1] if projects else 0  # the projection's class table
    params = sum(count_params(net) for net in nets) + table
    widths = sum(layer.n_out for net in nets for layer in net if isinstance(layer, Dense))
    itemsize = np.dtype(c.dtype).itemsize
    return itemsize * (copies * params + 8 * c.batch_size * widths), params


def check_model_memory(config: GANConfig | VAEConfig, overrides: dict[str, Any]) -> None:
    nbytes, params = model_memory(config)
    given = [k for k in SIZE_OPTIONS if k in overrides]
    named = " ".join(f"--{k.replace('_', '-')} {_shown(overrides[k])}" for k in given) or "the model preset"
    check_fits(nbytes, f"{named} (a model of {params:,} parameters, batch {config.batch_size})", UsageError)


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def stretch_batchnorm(overrides: dict[str, Any], preset: GANConfig) -> dict[str, Any]:
    """Make per-layer BatchNorm flags agree with the hidden sizes, or name the option that does not.

    A preset's per-layer pattern (say no,yes,yes,yes) is stretched to new ``--g-hidden`` sizes as
    its first flag followed by its last; an explicit ``--g-batchnorm`` list must match in length.
    """
    overrides = dict(overrides)
    for net, name in (("g", "generator"), ("d", "discriminator")):
        hidden = overrides.get(f"{net}_hidden", getattr(preset, f"{net}_hidden"))
        flags = overrides.get(f"{net}_batchnorm")
        if flags is None:
            flags = getattr(preset, f"{net}_batchnorm")
            if isinstance(flags, list) and len(flags) != len(hidden):
                overrides[f"{net}_batchnorm"] = flags[:1] + flags[-1:] * (len(hidden) - 1)
        elif isinstance(flags, list) and len(flags) != len(hidden):
            raise UsageError(
                f"--{net}-batchnorm: expected yes/no, or one flag per {name} hidden layer ({len(hidden)}), "
                f"got {len(flags)}"
            )
    return overrides
