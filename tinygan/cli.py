"""Command line: ``python -m tinygan train | sample | eval``.

Orchestration only: it parses options into :class:`~tinygan.runs.RunSettings`, builds or
loads the model through the Python API, and hands the run's files to
:class:`~tinygan.runs.RunRecorder`. Training logic lives in :mod:`tinygan.gan` and
:mod:`tinygan.trainer`.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import shlex
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .api import GAN, load_model
from .backend import BackendError
from .config import GANConfig, preset_config, preset_for
from .console import ProgressDisplay, StopSignal
from .data import Dataset, load_dataset
from .errors import CheckpointError, DataError, DivergenceError, UsageError
from .evaluate import FDTracker, evaluate_gan
from .families import build_vae, check_options, cmd_reconstruct, family, from_saved_config, originals_for, remedies
from .files import atomic_write_bytes
from .gan import seeded_latents
from .options import MODEL_OPTIONS, build_parser
from .runs import (
    RunRecorder,
    RunSettings,
    default_run_dir,
    prepare_run_dir,
    read_run_config,
    trim_metrics,
    write_run_config,
    write_samples,
)
from .trainer import Progress

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "ProgressDisplay", "build_parser", "main"]

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


# Model options a resumed run may change: they shape no array.
RESUMABLE_OPTIONS = ("lr_g", "lr_d", "real_label", "lr")
# Run options whose saved value a resumed run keeps: giving them again is a mistake worth naming.
SAVED_RUN_OPTIONS = ("dataset", "n_train", "model", "seed")


# -- train --------------------------------------------------------------------------------------


def _given_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in MODEL_OPTIONS if getattr(args, k) is not None}


def _total_steps(args: argparse.Namespace, n: int, batch_size: int, saved: int | None = None) -> int:
    if args.steps is not None:
        return args.steps
    if args.epochs is None and saved is not None:
        return saved
    return max(1, math.ceil((args.epochs or 5) * (n // batch_size)))


def cmd_train(args: argparse.Namespace) -> int:
    with StopSignal() as stop:  # from the start, so a signal during setup also ends cleanly
        created = False
        if args.resume:
            run_dir = Path(args.resume)
            gan, settings, dataset = _resume(args, run_dir)
        else:
            run_dir = Path(args.out) if args.out else default_run_dir(args.dataset or "digits", args.model or "default")
            created = prepare_run_dir(run_dir, resuming=False)
            try:
                gan, settings, dataset = _start(args)
            except BaseException:
                _remove_if_empty(run_dir, created)  # leave no empty run folder behind a failed start
                raise
        if stop.received is not None:
            _remove_if_empty(run_dir, created)
            print(f"{signal.Signals(stop.received).name}: stopped before training started", file=sys.stderr)
            return EXIT_INTERRUPTED
        code = _train(settings, run_dir, gan, dataset, stop, resumed=bool(args.resume))
    if code == 0:
        if not settings.no_eval:
            _write_eval(run_dir, gan, settings.data_dir)
        print(f"done: {run_dir}/samples.png, checkpoint.npz, metrics.jsonl", file=sys.stderr)
    return code


def _remove_if_empty(run_dir: Path, created: bool) -> None:
    if created and run_dir.is_dir() and not any(run_dir.iterdir()):
        run_dir.rmdir()


def _load_data(settings: RunSettings) -> Dataset:
    return load_dataset(settings.dataset, data_dir=settings.data_dir, split="train", n=settings.n_train,
                        seed=settings.seed)


def _start(args: argparse.Namespace) -> tuple[GAN, RunSettings, Dataset]:
    settings = RunSettings(
        dataset=args.dataset or "digits", data_dir=args.data_dir, n_train=args.n_train,
        model=args.model or "default", seed=args.seed or 0, no_eval=args.no_eval,
        overrides=_given_overrides(args),
        **{k: getattr(args, k) for k in RunSettings.CADENCES if getattr(args, k) is not None},
    )
    check_options(settings.model, settings.overrides)  # before loading data: a typo costs no time
    dataset = _load_data(settings)
    if family(settings.model) is not GAN:
        gan, settings.model = build_vae(settings.model, dataset, settings.overrides, args.backend, settings.seed)
        settings.total_steps = _total_steps(args, len(dataset), gan.config.batch_size)
        return gan, settings, dataset
    try:
        overrides = _stretch_batchnorm(settings.overrides, preset_config(settings.model, dataset.sample_shape,
                                                                          dataset.kind))
        config = preset_config(settings.model, dataset.sample_shape, dataset.kind, **overrides)
        gan = GAN(config, backend=args.backend, seed=settings.seed)
    except (TypeError, ValueError) as e:
        if isinstance(e, UsageError):
            raise
        raise UsageError(f"model options: {e}") from None
    settings.model = preset_for(settings.model, dataset.kind)
    settings.total_steps = _total_steps(args, len(dataset), config.batch_size)
    return gan, settings, dataset


def _stretch_batchnorm(overrides: dict[str, Any], preset: GANConfig) -> dict[str, Any]:
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


def _resume(args: argparse.Namespace, run_dir: Path) -> tuple[GAN, RunSettings, Dataset]:
    if args.out is not None:
        raise UsageError(f"--out: a resumed run stays in its folder ({run_dir}); drop --out")
    saved, saved_model = read_run_config(run_dir)
    for key in SAVED_RUN_OPTIONS:
        given = getattr(args, key)
        if given is not None and given != getattr(saved, key):
            raise UsageError(
                f"--{key.replace('_', '-')}: a resumed run keeps its saved {key} ({getattr(saved, key)!r}); "
                "drop the option, or start a new run with --out"
            )
    check_options(saved.model, _given_overrides(args))
    prepare_run_dir(run_dir, resuming=True)
    checkpoint = run_dir / "checkpoint.npz"
    if checkpoint.exists():
        gan = load_model(str(checkpoint), backend=args.backend)
        print(f"resuming {run_dir} at step {gan.step}", file=sys.stderr)
    else:  # stopped before its first checkpoint: step 0 is the saved model, freshly initialised
        try:
            gan = from_saved_config(saved.model, saved_model, args.backend, saved.seed)
        except (TypeError, ValueError) as e:
            raise UsageError(
                f"--resume {run_dir}: no checkpoint yet and config.json has no usable model ({e})"
            ) from None
        print(f"resuming {run_dir}: no checkpoint was written yet, starting at step 0", file=sys.stderr)
    _apply_resume_options(args, gan)
    settings = replace(
        saved, data_dir=args.data_dir or saved.data_dir, no_eval=saved.no_eval or args.no_eval,
        **{k: getattr(args, k) for k in RunSettings.CADENCES if getattr(args, k) is not None},
    )
    dataset = _load_data(settings)
    settings.total_steps = _total_steps(args, len(dataset), gan.config.batch_size, saved.total_steps)
    trim_metrics(run_dir / "metrics.jsonl", gan.step)
    return gan, settings, dataset


def _apply_resume_options(args: argparse.Namespace, gan: GAN) -> None:
    """Apply --lr-g/--lr-d/--real-label to a resumed run; refuse changes to its architecture."""
    for key, value in _given_overrides(args).items():
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


def _train(settings: RunSettings, run_dir: Path, gan: GAN, dataset: Dataset, stop: StopSignal, resumed: bool) -> int:
    gan.dataset_name = dataset.name
    write_run_config(run_dir, settings, gan, dataset)
    total = settings.total_steps
    print(
        f"training {settings.model} on {dataset.name} ({len(dataset)} samples) with {gan.backend.name}: "
        f"{total} steps of batch {gan.config.batch_size} -> {run_dir}",
        file=sys.stderr,
    )
    fd = FDTracker(gan, settings.data_dir) if not settings.no_eval and FDTracker.supports(gan) else None
    originals = originals_for(gan, settings.dataset, settings.data_dir, dataset)
    recorder = RunRecorder(run_dir, gan, settings, dataset, resumed, fd, originals)
    display = ProgressDisplay(metrics=gan.PROGRESS)

    def on_step(p: Progress) -> bool:
        display.update(p)
        recorder(p)
        return stop.received is not None

    try:
        # Overflow on the way to NaN is expected once training diverges; the guard reports it.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            gan.fit(dataset.x, steps=total, log_every=settings.log_every, callback=on_step)
            recorder.finish()
    except DivergenceError as e:
        raise UsageError(_divergence_advice(e, gan, run_dir, recorder.last_saved)) from None
    except KeyboardInterrupt:  # a second signal: out now, without saving
        display.close()
        print(_interrupted_again(gan.step, recorder.last_saved, run_dir), file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        recorder.close()
        display.close()
    if stop.received is not None:
        print(
            f"{signal.Signals(stop.received).name}: stopped at step {gan.step} of {total}; checkpoint saved to "
            f"{recorder.checkpoint}\n{_resume_hint(run_dir)}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 0


def _resume_hint(run_dir: Path) -> str:
    return f"resume with: python -m tinygan train --resume {shlex.quote(str(run_dir))}"


def _interrupted_again(step: int, last_saved: int | None, run_dir: Path) -> str:
    if last_saved is None:
        return f"interrupted again at step {step}: no checkpoint was saved"
    kept = "saved" if last_saved == step else f"not saved; step {last_saved} is kept"
    return f"interrupted again at step {step} ({kept}) in {run_dir / 'checkpoint.npz'}\n{_resume_hint(run_dir)}"


def _divergence_advice(error: DivergenceError, gan: GAN, run_dir: Path, last_saved: int | None) -> str:
    lower, names, more = remedies(gan)
    if last_saved is None:
        kept = "no checkpoint had been written yet"
        retry = f"start again with a lower {names} (say {lower})"
    else:
        kept = f"the last good checkpoint (step {last_saved}) is kept in {run_dir / 'checkpoint.npz'}"
        retry = (
            f"continue from it with a lower learning rate: python -m tinygan train "
            f"--resume {shlex.quote(str(run_dir))} {lower}"
        )
    return f"{error}; {kept}. Remedies: {retry}{more}"


def _write_eval(run_dir: Path, gan: GAN, data_dir: str | None) -> None:
    result = evaluate_gan(gan, data_dir=data_dir)
    if result is not None:
        atomic_write_bytes(run_dir / "eval.json", json.dumps(result, indent=2).encode())


# -- sample and eval --------------------------------------------------------------------------


def cmd_sample(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix not in (".png", ".npy"):
        raise UsageError(f"--out {out}: expected a .png or .npy file name")
    if not out.parent.is_dir():
        problem = "is not a folder" if out.parent.exists() else "does not exist"
        raise UsageError(f"--out {out}: {'' if out.parent.exists() else 'folder '}{out.parent} {problem}")
    if args.reconstruct is not None:
        return cmd_reconstruct(args)
    if args.noise is not None:
        raise UsageError("--noise: corrupts the images given with --reconstruct; add --reconstruct FILE")
    gan = load_model(args.checkpoint, backend=args.backend)
    z = seeded_latents(args.n, gan.config.latent_dim, args.seed or 0)
    try:
        if out.suffix == ".npy":
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
    gan = load_model(args.checkpoint, backend=args.backend)
    result = evaluate_gan(gan, n=args.n, data_dir=args.data_dir, seed=args.seed or 0)
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
