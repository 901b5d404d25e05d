"""The command line's options and the parser of each command.

Options that several commands share (``--backend``, ``--seed``, ``--checkpoint``, ``--data-dir``)
are defined once, in parent parsers. The options that override a model preset are not written
here: :data:`MODEL_OPTIONS` derives them from the config fields of every model family, each
with the help and the kind (:mod:`tinygan.models.settings`) that the field declares.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from ..backend import BACKENDS, ENV_VAR
from ..data import DATASETS
from ..io.errors import MemoryRequestError, UsageError
from ..models.settings import COUNT, PROBABILITY, Kind, SettingError
from ..training.run_record import RunSettings
from .api import MODELS

NON_NEGATIVE_INT = Kind("a non-negative integer", lambda v: v >= 0, int)
# A covariance or a class histogram of fewer than two samples means nothing; a walk has two ends.
AT_LEAST_TWO = Kind("an integer of at least 2", lambda v: v >= 2, int)
FINITE_POSITIVE = Kind("a positive number", lambda v: math.isfinite(v) and v > 0, float)


def _argument(kind: Kind) -> Any:
    """An argparse type from a setting's kind: the same reading and the same words as the config's check."""

    def read(text: str) -> Any:
        try:
            return kind.read(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return read


def _model_options() -> dict[str, Any]:
    """The ``train`` options that set a model's config fields: each field with help, of every family."""
    options: dict[str, Any] = {}
    for model in MODELS.values():
        for name, f in model.config_class.options().items():
            options.setdefault(name, f)
    return options


# Options that override a preset's GANConfig or VAEConfig field of the same name: field name -> field.
MODEL_OPTIONS = _model_options()
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
    names = ("backend", "seed", "train_seed", "checkpoint", "data")
    parents = {name: argparse.ArgumentParser(add_help=False) for name in names}
    parents["backend"].add_argument("--backend", default=None, choices=BACKENDS, help=(
        f"array backend: {', '.join(BACKENDS)} (default: ${ENV_VAR}, else numpy)"
    ))
    for name, text in (("seed", "random seed of the latents drawn [default: 0]"),
                       ("train_seed", "random seed [default: 0; a resumed run keeps its own]")):
        parents[name].add_argument("--seed", type=_argument(NON_NEGATIVE_INT), default=None, help=text)
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
        parents=[shared["data"], shared["backend"], shared["train_seed"]],
    )
    _train_options(train)
    sample = sub.add_parser(
        "sample", help="generate samples from a checkpoint", formatter_class=fmt,
        parents=[shared["checkpoint"], shared["data"], shared["backend"], shared["seed"]],
    )
    sample.add_argument("-n", type=_argument(COUNT), default=None, help=(
        "number of samples, of images to reconstruct, or of rows with --interpolate [default: 64; 8 rows]"
    ))
    sample.add_argument("--class", dest="classes", default=None, metavar="C", help=(
        "a conditional model's class(es) to draw: a name or number, or several separated by commas "
        "(sneaker, 7, 3,5), case-insensitive [default: every class, spread evenly]"
    ))
    sample.add_argument("--interpolate", type=_argument(AT_LEAST_TWO), default=None, metavar="K", help=(
        "draw -n rows of K images, each walking along the great circle between two random latents"
    ))
    sample.add_argument("--out", required=True, help=".png (a grid or point plot) or .npy (floats, images in [0, 1])")
    sample.add_argument("--reconstruct", default=None, metavar="SOURCE", help=(
        "VAE: reconstruct the first -n images of SOURCE, a .npy/.npz file or a dataset name (its test split), "
        "instead of sampling; .png shows originals above reconstructions"
    ))
    sample.add_argument("--noise", type=_argument(PROBABILITY), default=None, metavar="P", help=(
        "with --reconstruct: replace each pixel by black or white with probability P first (denoising)"
    ))
    evaluate = sub.add_parser(
        "eval", help="measure a trained model's samples; prints JSON", formatter_class=fmt,
        parents=[shared["checkpoint"], shared["data"], shared["backend"], shared["seed"]],
    )
    evaluate.add_argument("--n", type=_argument(AT_LEAST_TWO), default=None, help=(
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
    train.add_argument("--n-train", type=_argument(COUNT), default=None,
                       help="use only the first N training samples")
    presets = sorted(name for model in MODELS.values() for name in model.config_class.PRESETS)
    train.add_argument("--model", default=None, choices=presets,
                       help="model preset: a GAN, or vae for a variational autoencoder [default: default]")
    length = train.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=_argument(FINITE_POSITIVE), default=None,
                        help="passes over the data [default: 5]")
    length.add_argument("--steps", type=_argument(COUNT), default=None, help="training steps (overrides --epochs)")
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
            "--" + name.replace("_", "-"), type=_argument(COUNT), default=None,
            help=f"{text} [default: {RUN_DEFAULTS[name]}{every}]",
        )
    train.add_argument("--no-eval", action="store_true", help="skip the quality metrics at the end (eval.json)")
    train.add_argument("--conditional", action="store_const", const=True, default=None, help=(
        "a class-conditional GAN: G and D are given each image's class, from the dataset's labels "
        "(digits, mnist, fashion-mnist, or an .npz holding x, y and optionally names)"
    ))
    model = train.add_argument_group("model options (override the preset)")
    for name, f in MODEL_OPTIONS.items():
        flags = ["--" + name.replace("_", "-"), *OLD_SPELLINGS.get(name, ())]
        kind, text = f.metadata["kind"], f.metadata["help"]
        model.add_argument(*flags, dest=name, type=_argument(kind), default=None, help=text)


# -- what model options ask for --------------------------------------------------------------

# Options that decide how much memory a model takes, named when it cannot have it.
SIZE_OPTIONS = ("g_hidden", "d_hidden", "enc_hidden", "dec_hidden", "latent_dim", "pack", "maxout_pieces",
                "batch_size")


def memory_usage_error(error: MemoryRequestError, overrides: dict[str, Any]) -> UsageError:
    """A model refused for its size (:meth:`~tinygan.models.model.Model.check_memory`, before anything is
    allocated) as a usage error naming the options that asked for it."""
    given = [k for k in SIZE_OPTIONS if k in overrides]
    named = " ".join(f"--{k.replace('_', '-')} {_shown(overrides[k])}" for k in given) or "the model preset"
    return UsageError(f"{named}: {getattr(error, 'request', error)}")


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def check_options(model_class: Any, preset: str, overrides: dict[str, Any], conditional: bool = False) -> None:
    """Refuse model options that the preset's family does not have, naming the option."""
    known = model_class.config_class.options()
    for key in overrides:
        if key not in known:
            others = [m.config_class.FAMILY for m in MODELS.values() if key in m.config_class.options()]
            raise UsageError(f"--{key.replace('_', '-')}: a {' and '.join(others)} option, not one of --model {preset}")
    foreign = model_class.config_class.foreign_options(preset)
    for key in overrides:
        if key in foreign:
            raise UsageError(f"--{key.replace('_', '-')}: an option of the {foreign[key]} architecture, not one of "
                             f"--model {preset}")
    if conditional and not model_class.config_class.CONDITIONS:
        raise UsageError(f"--conditional: a GAN option, not one of --model {preset}")
    if "conditioning" in overrides and not conditional:
        raise UsageError("--conditioning: chooses how a conditional GAN's D sees the class; add --conditional")


def usage_error(error: ValueError) -> UsageError:
    """A config's refusal as a usage error: a setting given as an option is named as that option."""
    if isinstance(error, UsageError):
        return error
    if isinstance(error, SettingError) and error.setting in MODEL_OPTIONS:
        return UsageError(f"--{error.setting.replace('_', '-')} {_shown(error.value)}: {error.problem}")
    return UsageError(f"model options: {error}")


def stretch_batchnorm(overrides: dict[str, Any], preset: Any) -> dict[str, Any]:
    """Make per-layer BatchNorm flags agree with the hidden sizes, or name the option that does not.

    A preset's per-layer pattern (say no,yes,yes,yes) is stretched to new ``--g-hidden`` sizes as
    its first flag followed by its last; an explicit ``--g-batchnorm`` list must match in length.
    A family without per-layer flags is left as it is.
    """
    overrides = dict(overrides)
    for net, name in (("g", "generator"), ("d", "discriminator")):
        if not hasattr(preset, f"{net}_batchnorm"):
            continue
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
