"""Command line: ``python -m tinygan train | sample | eval``.

A thin layer over the Python API: it parses options, loads data, shows
progress and writes files. All training logic lives in :mod:`tinygan.gan`
and :mod:`tinygan.trainer`.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .backend import BackendError
from .checkpoint import CheckpointError, atomic_write_bytes
from .data import DATASETS, DataError, Dataset, load_dataset
from .gan import GAN, PRESETS, preset_config
from .images import image_grid, scatter_png, write_png
from .trainer import DivergenceError, Progress

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


class UsageError(ValueError):
    """An option value that cannot be used; the message names the option."""


# -- option parsing ---------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
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
        raise argparse.ArgumentTypeError(f"expected yes/no, or one yes/no per hidden layer like no,yes,yes, got {text!r}")
    return flags[0] if len(flags) == 1 else flags


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value


def _label(text: str) -> float:
    value = float(text)
    if not 0.5 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0.5, 1], got {text}")
    return value


# Options that override a preset's GANConfig field of the same name.
MODEL_OPTIONS = {
    "latent_dim": (_positive_int, "size of the latent vector z"),
    "g_hidden": (_int_list, "generator hidden sizes, e.g. 128,256,512,1024"),
    "d_hidden": (_int_list, "discriminator hidden sizes, e.g. 512,256"),
    "g_activation": (str, "generator hidden activation: relu, leaky_relu, tanh or sigmoid"),
    "d_activation": (str, "discriminator hidden activation: relu, leaky_relu, tanh or sigmoid"),
    "g_batchnorm": (_batchnorm, "BatchNorm in generator hidden layers: yes, no, or one per layer"),
    "d_batchnorm": (_batchnorm, "BatchNorm in discriminator hidden layers: yes, no, or one per layer"),
    "d_dropout": (_probability, "dropout probability after each discriminator hidden layer"),
    "real_label": (_label, "target for real samples in D's loss (0.9 = one-sided label smoothing)"),
    "lr_g": (_positive_float, "generator Adam learning rate"),
    "lr_d": (_positive_float, "discriminator Adam learning rate"),
    "pack": (_positive_int, "PacGAN packing: D judges this many samples at once (1 = off)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinygan", description="Train and sample GANs on NumPy or CuPy with hand-written backprop."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,sample,eval}")
    fmt = argparse.ArgumentDefaultsHelpFormatter

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
    train.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run saved in RUN_DIR")
    train.add_argument("--log-every", type=_positive_int, default=100, help="steps between metric records")
    train.add_argument("--sample-every", type=_positive_int, default=500, help="steps between samples.png refreshes")
    train.add_argument("--checkpoint-every", type=_positive_int, default=1000, help="steps between checkpoints")
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


# -- files of a run ---------------------------------------------------------------------------


def _default_run_dir(dataset: str, model: str) -> Path:
    stem = Path(dataset).stem if dataset not in DATASETS else dataset
    base = Path("runs") / f"{stem}-{model}"
    candidate, k = base, 2
    while candidate.exists():
        candidate, k = Path(f"{base}-{k}"), k + 1
    return candidate


def _prepare_run_dir(path: Path, resuming: bool) -> None:
    """Create the run folder and prove it writable before any training time is spent."""
    if not resuming and (path / "checkpoint.npz").exists():
        raise UsageError(
            f"--out {path}: already holds a trained run; continue it with --resume {path} or choose another --out"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"--out {path}: cannot write there ({e.strerror or e})") from None


def write_samples(path: Path, gan: GAN, z: np.ndarray, real: Dataset | None = None) -> None:
    """A grid of generated images, or for 2-D points a plot of generated over real points."""
    fake = gan.sample(z.shape[0], z=z)
    if gan.config.data_kind == "image" and len(gan.config.data_shape) == 2:
        write_png(path, image_grid(fake))
    elif gan.config.data_kind == "image":
        side = math.isqrt(gan.config.data_dim)
        write_png(path, image_grid(fake.reshape(-1, side, side)))
    else:
        reference = None if real is None else real.x[: z.shape[0]]
        scatter_png(path, fake[:, :2], None if reference is None else reference[:, :2])


class ProgressDisplay:
    """A one-line progress bar on a terminal; a plain line per log record otherwise."""

    def __init__(self, stream: Any = sys.stderr) -> None:
        self.stream = stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.start = time.perf_counter()
        self.last: dict[str, float] | None = None

    def update(self, p: Progress) -> None:
        if p.record is not None:
            self.last = p.record
        if self.tty and (p.record is not None or p.step % 10 == 0 or p.step == p.total):
            width = 24
            filled = int(width * p.step / max(p.total, 1))
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {p.step}/{p.total} {self._stats(p)}\033[K")
            self.stream.flush()
        elif not self.tty and p.record is not None:
            self.stream.write(f"step {p.step}/{p.total} {self._stats(p)}\n")
            self.stream.flush()

    def _stats(self, p: Progress) -> str:
        if self.last is None:
            return f"epoch {p.epoch}"
        r = self.last
        eta = (p.total - p.step) / max(r["steps_per_s"], 1e-9)
        return (
            f"epoch {p.epoch} | D {r['d_loss']:.3f} G {r['g_loss']:.3f} "
            f"D(x) {r['d_real']:.2f} D(G(z)) {r['d_fake']:.2f} | {r['steps_per_s']:.1f} steps/s "
            f"ETA {_duration(eta)}"
        )

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else (
        f"{seconds // 60}:{seconds % 60:02d}"
    )


class StopSignal:
    """Turns SIGINT/SIGTERM into a request to stop after the current step."""

    def __init__(self) -> None:
        self.received: int | None = None

    def __enter__(self) -> StopSignal:
        self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:  # a second signal: the user really wants out
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


# -- commands ---------------------------------------------------------------------------------


def _model_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides = {k: getattr(args, k) for k in MODEL_OPTIONS if getattr(args, k) is not None}
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    return overrides


def _load_training_data(args: argparse.Namespace) -> Dataset:
    return load_dataset(args.dataset, data_dir=args.data_dir, split="train", n=args.n_train, seed=args.seed)


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume:
        run_dir = Path(args.resume)
        saved = _read_run_config(run_dir)
        for key in ("dataset", "data_dir", "n_train", "seed", "model"):
            setattr(args, key, saved["args"].get(key))
        if args.epochs is None and args.steps is None:
            args.steps = saved["total_steps"]
        _prepare_run_dir(run_dir, resuming=True)
        gan = GAN.load(str(run_dir / "checkpoint.npz"), backend=args.backend)
        print(f"resuming {run_dir} at step {gan.step}", file=sys.stderr)
        dataset = _load_training_data(args)
    else:
        run_dir = Path(args.out) if args.out else _default_run_dir(args.dataset, args.model)
        _prepare_run_dir(run_dir, resuming=False)
        dataset = _load_training_data(args)
        try:
            config = preset_config(args.model, dataset.sample_shape, dataset.kind, **_model_overrides(args))
            gan = GAN(config, backend=args.backend, seed=args.seed)
        except (TypeError, ValueError) as e:
            raise UsageError(f"model options: {e}") from None

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
        f"training {args.model} on {dataset.name} ({len(dataset)} samples) with {gan.backend.name}: "
        f"{total} steps of batch {batch_size} -> {run_dir}",
        file=sys.stderr,
    )

    z_fixed = np.random.default_rng(args.seed + 1).standard_normal((100, gan.config.latent_dim)).astype(np.float32)
    if dataset.kind == "points":
        z_fixed = np.random.default_rng(args.seed + 1).standard_normal((2500, gan.config.latent_dim)).astype(
            np.float32
        )
    display = ProgressDisplay()
    metrics_file = open(run_dir / "metrics.jsonl", "a")  # noqa: SIM115 -- closed in finally

    def save() -> None:
        gan.check_finite()
        gan.save(str(run_dir / "checkpoint.npz"), {"dataset": dataset.name})

    with StopSignal() as stop:

        def on_step(p: Progress) -> bool:
            display.update(p)
            if p.record is not None:
                metrics_file.write(json.dumps(p.record) + "\n")
                metrics_file.flush()
            if p.step % args.sample_every == 0:
                write_samples(run_dir / "samples.png", gan, z_fixed, dataset)
            if p.step % args.checkpoint_every == 0:
                save()
            return stop.received is not None

        try:
            gan.fit(dataset.x, steps=total, batch_size=batch_size, log_every=args.log_every, callback=on_step)
        except DivergenceError as e:
            display.close()
            raise UsageError(
                f"{e}; the last good checkpoint is kept in {run_dir}. Try a lower --lr-g/--lr-d, "
                "--real-label 0.9, or BatchNorm in the generator"
            ) from None
        finally:
            metrics_file.close()
        display.close()
        save()
        write_samples(run_dir / "samples.png", gan, z_fixed, dataset)
        if stop.received is not None:
            name = signal.Signals(stop.received).name
            print(
                f"{name}: stopped at step {gan.step}; checkpoint saved to {run_dir / 'checkpoint.npz'}\n"
                f"resume with: python -m tinygan train --resume {run_dir}",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
    if not args.no_eval:
        _write_eval(run_dir, gan, args.data_dir)
    print(f"done: {run_dir}/samples.png, checkpoint.npz, metrics.jsonl", file=sys.stderr)
    return 0


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
        saved = json.loads(path.read_text())
        saved["args"], saved["total_steps"]  # noqa: B018 -- presence check
    except FileNotFoundError:
        raise UsageError(f"--resume {run_dir}: no config.json there; is it a tinygan run folder?") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"--resume {run_dir}: config.json is unreadable ({e})") from None
    return saved


def cmd_sample(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix not in (".png", ".npy"):
        raise UsageError(f"--out {out}: expected a .png or .npy file name")
    gan = GAN.load(args.checkpoint, backend=args.backend)
    z = np.random.default_rng(args.seed).standard_normal((args.n, gan.config.latent_dim)).astype(np.float32)
    if out.parent and not out.parent.exists():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist")
    if out.suffix == ".npy":
        import io

        buffer = io.BytesIO()
        np.save(buffer, gan.sample(args.n, z=z))
        atomic_write_bytes(out, buffer.getvalue())
    else:
        write_samples(out, gan, z)
    print(f"wrote {args.n} samples to {out}", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_gan

    gan = GAN.load(args.checkpoint, backend=args.backend)
    result = evaluate_gan(gan, n=args.n, data_dir=args.data_dir, seed=args.seed)
    print(json.dumps(result, indent=2))
    return 0


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "eval": cmd_eval}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (UsageError, DataError, CheckpointError, BackendError) as e:
        print(f"tinygan {args.command}: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"tinygan {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
