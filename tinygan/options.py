"""The command line's options: value types with one-line errors, and the parser of each command.

Options that several commands share (``--backend``, ``--seed``, ``--checkpoint``, ``--data-dir``)
are defined once, in parent parsers. Options that override a model preset are listed in
:data:`MODEL_OPTIONS`, by the :class:`~tinygan.config.GANConfig` field they set.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from .config import ACTIVATIONS, PRESETS
from .data import DATASETS
from .runs import RunSettings
from .vae_config import VAE_PRESETS


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
    sample.add_argument("-n", type=_positive_int, default=64, help="number of samples (or of images to reconstruct)")
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
    evaluate.add_argument("--n", type=_positive_int, default=None, help="number of generated samples")
    return parser


def _train_options(train: argparse.ArgumentParser) -> None:
    train.add_argument(
        "--dataset", default=None,
        help=f"dataset name ({', '.join(DATASETS)}) or a path to a .npy/.npz file of shape (N, D) or (N, H, W) "
        "[default: digits]",
    )
    train.add_argument("--n-train", type=_positive_int, default=None, help="use only the first N training samples")
    train.add_argument("--model", default=None, choices=sorted({*PRESETS, *VAE_PRESETS}),
                       help="model preset: a GAN, or vae for a variational autoencoder [default: default]")
    length = train.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=_positive_float, default=None, help="passes over the data [default: 5]")
    length.add_argument("--steps", type=_positive_int, default=None, help="training steps (overrides --epochs)")
    train.add_argument("--out", default=None, help="run folder [default: runs/<dataset>-<model>, numbered if taken]")
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
    model = train.add_argument_group("model options (override the preset)")
    for name, (kind, text) in MODEL_OPTIONS.items():
        flags = ["--" + name.replace("_", "-"), *OLD_SPELLINGS.get(name, ())]
        model.add_argument(*flags, dest=name, type=kind, default=None, help=text)
