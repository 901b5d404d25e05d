"""Command line: ``python -m tinygan train | sample | eval``.

A thin layer over the Python API: it parses options, loads data, shows
progress and writes files. All training logic lives in :mod:`tinygan.gan`
and :mod:`tinygan.trainer`.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .backend import BackendError
from .checkpoint import CheckpointError
from .data import DATASETS, DataError, Dataset, load_dataset
from .files import atomic_write_bytes
from .gan import GAN, PRESETS, GANConfig, preset_config
from .runs import (
    ProgressDisplay,
    StopSignal,
    UsageError,
    default_run_dir,
    prepare_run_dir,
    trim_metrics,
    write_samples,
)
from .trainer import DivergenceError, Progress

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


# -- option parsing ---------------------------------------------------------------------------


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


ACTIVATIONS = ("relu", "leaky_relu", "maxout", "tanh", "sigmoid")


def _activation(text: str) -> str:
    if text not in ACTIVATIONS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(ACTIVATIONS)}, got {text!r}")
    return text


# Options that override a preset's GANConfig field of the same name.
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
    "g_ema": (_probability, "decay of the moving average of G's weights used for sampling (0 = off)"),
    "pack": (_positive_int, "PacGAN packing: D judges this many samples at once (1 = off)"),
}


RUN_DEFAULTS = {"log_every": 100, "sample_every": 500, "checkpoint_every": 1000, "eval_every": 500}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the empty ones (None, False) that only mean "not given"."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help or ""
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinygan", description="Train and sample GANs on NumPy or CuPy with hand-written backprop."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,sample,eval}")
    fmt = _HelpFormatter

    train = sub.add_parser("train", help="train a GAN and write samples, metrics and checkpoints", formatter_class=fmt)
    train.add_argument(
        "--dataset", default="digits",
        help=f"dataset name ({', '.join(DATASETS)}) or a path to a .npy/.npz file of shape (N, D) or (N, H, W)",
    )
    train.add_argument("--data-dir", default=None, help="folder holding MNIST/Fashion-MNIST IDX files")
    train.add_argument("--n-train", type=_positive_int, default=None, help="use only the first N training samples")
    train.add_argument("--model", default="default", choices=sorted(PRESETS), help="model preset")
    train.add_argument("--backend", default=None, help="numpy or cupy (default: $TINYGAN_BACKEND, else numpy)")
    length = train.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=_positive_float, default=None, help="passes over the data [default: 5]")
    length.add_argument("--steps", type=_positive_int, default=None, help="training steps (overrides --epochs)")
    train.add_argument("--batch-size", type=_positive_int, default=None, help="batch size [default: the preset's, 64]")
    train.add_argument("--seed", type=int, default=0, help="random seed for initialisation, data order and noise")
    train.add_argument("--out", default=None, help="run folder [default: runs/<dataset>-<model>, numbered if taken]")
    train.add_argument("--resume", default=None, metavar="RUN_DIR", help=(
        "continue the run saved in RUN_DIR with its data, model and settings; "
        "--steps/--epochs, --lr-g, --lr-d and --real-label may be given anew"
    ))
    # The run's own rhythm: None here means "the saved run's value when resuming, else the default".
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
        model.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None, help=text)

    sample = sub.add_parser("sample", help="generate samples from a checkpoint", formatter_class=fmt)
    sample.add_argument("--checkpoint", required=True, help="RUN_DIR/checkpoint.npz (or RUN_DIR)")
    sample.add_argument("-n", type=_positive_int, default=64, help="number of samples")
    sample.add_argument("--out", required=True, help=".png (a grid or point plot) or .npy (floats, images in [0, 1])")
    sample.add_argument("--seed", type=int, default=0, help="random seed for the latent vectors")
    sample.add_argument("--backend", default=None, help="numpy or cupy (default: $TINYGAN_BACKEND, else numpy)")

    evaluate = sub.add_parser("eval", help="measure a trained model's samples; prints JSON", formatter_class=fmt)
    evaluate.add_argument("--checkpoint", required=True, help="RUN_DIR/checkpoint.npz (or RUN_DIR)")
    evaluate.add_argument("--n", type=_positive_int, default=None, help="number of generated samples")
    evaluate.add_argument("--data-dir", default=None, help="folder holding MNIST/Fashion-MNIST IDX files")
    evaluate.add_argument("--seed", type=int, default=0, help="random seed for the latent vectors")
    evaluate.add_argument("--backend", default=None, help="numpy or cupy (default: $TINYGAN_BACKEND, else numpy)")
    return parser


# -- commands ---------------------------------------------------------------------------------


def _model_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides = {k: getattr(args, k) for k in MODEL_OPTIONS if getattr(args, k) is not None}
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    return overrides


def _fit_batchnorm(overrides: dict[str, Any], preset: GANConfig) -> None:
    """Make per-layer BatchNorm flags agree with the hidden sizes, or name the option that does not.

    A preset's per-layer pattern (say no,yes,yes,yes) is stretched to new ``--g-hidden`` sizes as
    its first flag followed by its last; an explicit ``--g-batchnorm`` list must match in length.
    """
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


# Model options that may change when a run is resumed: they shape no array.
RESUMABLE_OPTIONS = ("lr_g", "lr_d", "real_label")


def _apply_resume_options(args: argparse.Namespace, gan: GAN) -> None:
    """Apply --lr-g/--lr-d/--real-label to a resumed run; refuse changes to its architecture."""
    for key, value in _model_overrides(args).items():
        current = getattr(gan.config, key)
        if key in RESUMABLE_OPTIONS:
            if value != current:
                setattr(gan.config, key, value)
                print(f"resuming with --{key.replace('_', '-')} {value:g} (was {current:g})", file=sys.stderr)
            continue
        if key.endswith("_batchnorm"):
            n = len(getattr(gan.config, key.replace("batchnorm", "hidden")))
            value, current = (v if isinstance(v, list) else [v] * n for v in (value, current))
        if value != current:
            raise UsageError(
                f"--{key.replace('_', '-')}: a resumed run keeps its saved model ({key} = {current}); "
                "drop the option, or start a new run with --out"
            )
    gan.opt_g.lr, gan.opt_d.lr = gan.config.lr_g, gan.config.lr_d


def _load_training_data(args: argparse.Namespace) -> Dataset:
    return load_dataset(args.dataset, data_dir=args.data_dir, split="train", n=args.n_train, seed=args.seed)


def cmd_train(args: argparse.Namespace) -> int:
    with StopSignal() as stop:  # from the start, so a signal during setup also ends cleanly
        created = False
        if args.resume:
            run_dir = Path(args.resume)
            gan, dataset = _resume(args, run_dir)
        else:
            run_dir = Path(args.out) if args.out else default_run_dir(args.dataset, args.model)
            created = prepare_run_dir(run_dir, resuming=False)
            try:
                gan, dataset = _start(args)
            except BaseException:
                if created and not any(run_dir.iterdir()):
                    run_dir.rmdir()  # leave no empty run folder behind a failed start
                raise
        if stop.received is not None:
            if created and not any(run_dir.iterdir()):
                run_dir.rmdir()
            print(f"{signal.Signals(stop.received).name}: stopped before training started", file=sys.stderr)
            return EXIT_INTERRUPTED
        code = _train(args, run_dir, gan, dataset, stop)
    if code == 0:
        if not args.no_eval:
            _write_eval(run_dir, gan, args.data_dir)
        print(f"done: {run_dir}/samples.png, checkpoint.npz, metrics.jsonl", file=sys.stderr)
    return code


def _start(args: argparse.Namespace) -> tuple[GAN, Dataset]:
    dataset = _load_training_data(args)
    overrides = _model_overrides(args)
    try:
        _fit_batchnorm(overrides, preset_config(args.model, dataset.sample_shape, dataset.kind))
        config = preset_config(args.model, dataset.sample_shape, dataset.kind, **overrides)
        gan = GAN(config, backend=args.backend, seed=args.seed)
    except (TypeError, ValueError) as e:
        if isinstance(e, UsageError):
            raise
        raise UsageError(f"model options: {e}") from None
    return gan, dataset


def _resume(args: argparse.Namespace, run_dir: Path) -> tuple[GAN, Dataset]:
    saved = _read_run_config(run_dir)
    for key in ("dataset", "data_dir", "n_train", "seed", "model"):
        setattr(args, key, saved["args"].get(key))
    for key in RUN_DEFAULTS:  # the run's own rhythm, unless given again
        value = saved["args"].get(key)
        if getattr(args, key) is None and isinstance(value, int) and value > 0:
            setattr(args, key, value)
    args.no_eval = args.no_eval or saved["args"].get("no_eval") is True
    if args.epochs is None and args.steps is None:
        args.steps = saved["total_steps"]
    prepare_run_dir(run_dir, resuming=True)
    checkpoint = run_dir / "checkpoint.npz"
    if checkpoint.exists():
        gan = GAN.load(str(checkpoint), backend=args.backend)
        print(f"resuming {run_dir} at step {gan.step}", file=sys.stderr)
    else:  # stopped before its first checkpoint: step 0 is the saved model, freshly initialised
        try:
            gan = GAN(GANConfig.from_json(saved["model"]), backend=args.backend, seed=args.seed)
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(
                f"--resume {run_dir}: no checkpoint yet and config.json has no usable model ({e})"
            ) from None
        print(f"resuming {run_dir}: no checkpoint was written yet, starting at step 0", file=sys.stderr)
    _apply_resume_options(args, gan)
    trim_metrics(run_dir / "metrics.jsonl", gan.step)
    return gan, _load_training_data(args)


def _train(args: argparse.Namespace, run_dir: Path, gan: GAN, dataset: Dataset, stop: StopSignal) -> int:
    for key, value in RUN_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    gan.dataset_name = dataset.name
    batch_size = gan.config.batch_size
    steps_per_epoch = len(dataset) // batch_size
    total = args.steps or math.ceil((args.epochs or 5) * steps_per_epoch)
    run_config = {
        "args": {k: v for k, v in vars(args).items() if k != "func"},
        "model": gan.config.to_json(),
        "dataset": {"name": dataset.name, "n": len(dataset), "kind": dataset.kind},
        "backend": gan.backend.name,
        "total_steps": total,
    }
    atomic_write_bytes(run_dir / "config.json", json.dumps(run_config, indent=2).encode())
    print(
        f"training {'points' if dataset.kind == 'points' else args.model} on {dataset.name} "
        f"({len(dataset)} samples) with {gan.backend.name}: "
        f"{total} steps of batch {batch_size} -> {run_dir}",
        file=sys.stderr,
    )

    n_fixed = 2500 if dataset.kind == "points" else 100
    z_fixed = np.random.default_rng(args.seed + 1).standard_normal((n_fixed, gan.config.latent_dim))
    z_fixed = z_fixed.astype(np.float32)  # its own generator: samples.png never draws from the training one
    checkpoint = run_dir / "checkpoint.npz"
    last_saved = gan.step if checkpoint.exists() else None

    def save() -> None:
        nonlocal last_saved
        gan.check_finite()
        gan.save(str(checkpoint))  # refuses non-finite state as well
        last_saved = gan.step

    def on_step(p: Progress) -> bool:
        display.update(p)
        if p.record is not None:
            metrics_file.write(json.dumps(p.record) + "\n")
            metrics_file.flush()
        if p.step % args.checkpoint_every == 0:
            save()
        if p.step % args.sample_every == 0:
            gan.check_finite()
            write_samples(run_dir / "samples.png", gan, z_fixed, dataset)
        if fd_tracker is not None and p.step % args.eval_every == 0:
            gan.check_finite()
            metrics_file.write(json.dumps({"step": p.step, "fd": fd_tracker(gan)}) + "\n")
            metrics_file.flush()
        return stop.received is not None

    fd_tracker = None
    if not args.no_eval:
        from .evaluate import FDTracker

        fd_tracker = FDTracker(gan, args.data_dir) if FDTracker.supports(gan) else None
    display = ProgressDisplay()
    # A fresh run starts the file anew; a resumed one appends (its records were trimmed to its step).
    metrics_file = open(run_dir / "metrics.jsonl", "a" if args.resume else "w")  # noqa: SIM115
    try:
        # Overflow on the way to NaN is expected once training diverges; the guard reports it.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            gan.fit(dataset.x, steps=total, batch_size=batch_size, log_every=args.log_every, callback=on_step)
            if last_saved != gan.step:
                save()
        write_samples(run_dir / "samples.png", gan, z_fixed, dataset)
    except DivergenceError as e:
        raise UsageError(_divergence_advice(e, gan, run_dir, last_saved)) from None
    except KeyboardInterrupt:  # a second signal: out now, without saving
        display.close()
        if last_saved is None:
            print(f"interrupted again at step {gan.step}: no checkpoint was saved", file=sys.stderr)
        else:
            kept = "saved" if last_saved == gan.step else f"not saved; step {last_saved} is kept"
            print(
                f"interrupted again at step {gan.step} ({kept}) in {checkpoint}\n"
                f"resume with: python -m tinygan train --resume {shlex.quote(str(run_dir))}",
                file=sys.stderr,
            )
        return EXIT_INTERRUPTED
    finally:
        metrics_file.close()
        display.close()
    if stop.received is not None:
        name = signal.Signals(stop.received).name
        print(
            f"{name}: stopped at step {gan.step} of {total}; checkpoint saved to {checkpoint}\n"
            f"resume with: python -m tinygan train --resume {shlex.quote(str(run_dir))}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 0


def _divergence_advice(error: DivergenceError, gan: GAN, run_dir: Path, last_saved: int | None) -> str:
    lr_g, lr_d = f"{gan.config.lr_g / 10:g}", f"{gan.config.lr_d / 10:g}"
    if last_saved is None:
        kept = "no checkpoint had been written yet"
        retry = f"start again with a lower --lr-g/--lr-d (say --lr-g {lr_g} --lr-d {lr_d})"
    else:
        kept = f"the last good checkpoint (step {last_saved}) is kept in {run_dir / 'checkpoint.npz'}"
        retry = (
            f"continue from it with a lower learning rate: python -m tinygan train "
            f"--resume {shlex.quote(str(run_dir))} --lr-g {lr_g} --lr-d {lr_d}"
        )
    return (
        f"{error}; {kept}. Remedies: {retry}; label smoothing (--real-label 0.9) "
        "or, in a new run, BatchNorm in the generator (--g-batchnorm yes)"
    )


def _write_eval(run_dir: Path, gan: GAN, data_dir: str | None) -> None:
    try:
        from .evaluate import evaluate_gan
    except ImportError:
        return
    result = evaluate_gan(gan, data_dir=data_dir)
    if result is not None:
        atomic_write_bytes(run_dir / "eval.json", json.dumps(result, indent=2).encode())


def _read_run_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.json"
    try:
        saved = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"--resume {run_dir}: no config.json there; is it a tinygan run folder?") from None
    except (OSError, ValueError, RecursionError) as e:
        raise UsageError(f"--resume {run_dir}: config.json is unreadable ({e})") from None
    total = saved.get("total_steps") if isinstance(saved, dict) else None
    args = saved.get("args") if isinstance(saved, dict) else None
    optional_int, optional_str = (int, type(None)), (str, type(None))
    if not (
        isinstance(total, int) and total > 0 and isinstance(args, dict)
        and isinstance(args.get("dataset"), str) and isinstance(args.get("seed"), int)
        and isinstance(args.get("n_train"), optional_int) and isinstance(args.get("data_dir"), optional_str)
    ):
        raise UsageError(f"--resume {run_dir}: config.json is not a tinygan run description")
    args.setdefault("model", "default")
    return saved


def cmd_sample(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix not in (".png", ".npy"):
        raise UsageError(f"--out {out}: expected a .png or .npy file name")
    if not out.parent.is_dir():
        problem = "is not a folder" if out.parent.exists() else "does not exist"
        raise UsageError(f"--out {out}: {'' if out.parent.exists() else 'folder '}{out.parent} {problem}")
    gan = GAN.load(args.checkpoint, backend=args.backend)
    z = np.random.default_rng(args.seed).standard_normal((args.n, gan.config.latent_dim)).astype(np.float32)
    try:
        if out.suffix == ".npy":
            import io

            buffer = io.BytesIO()
            np.save(buffer, gan.sample(args.n, z=z))
            atomic_write_bytes(out, buffer.getvalue())
        else:
            write_samples(out, gan, z)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    print(f"wrote {args.n} samples to {out}", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_gan

    gan = GAN.load(args.checkpoint, backend=args.backend)
    result = evaluate_gan(gan, n=args.n, data_dir=args.data_dir, seed=args.seed)
    if result is None:
        raise UsageError(
            f"--checkpoint {args.checkpoint}: no metrics for dataset {gan.dataset_name!r} "
            "(metrics exist for digits, mnist, fashion-mnist, ring and grid)"
        )
    print(json.dumps(result, indent=2))
    return 0


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "eval": cmd_eval}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (UsageError, DataError, CheckpointError, BackendError, DivergenceError, OSError) as e:
        # One line, never a traceback: the message names the file or option at fault.
        message = f"{e.filename}: {e.strerror or e}" if isinstance(e, OSError) and e.filename else str(e)
        print(f"tinygan {args.command}: error: {' '.join(message.split())}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"tinygan {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
