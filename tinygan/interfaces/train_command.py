"""``tinygan train``: claim a run folder, set the run up, train, and say what was kept.

Orchestration only. The folder is claimed and locked first (:mod:`tinygan.training.run_folder`); everything
that can fail before training -- the data, the model, the evaluation judge, the requests for
memory -- is done before the run writes its first file, and a start that fails anyway is
undone. From then on :class:`~tinygan.training.run_record.RunRecorder` writes the run's files, and every way
the run can end names the checkpoint it keeps.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import signal
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Dataset, generated_bytes, load_dataset
from ..evaluation.evaluate import evaluate_model
from ..evaluation.own_data import evaluate_data, fd_tracker
from ..io.checkpoint import read_meta
from ..io.errors import CheckpointError, DivergenceError, MemoryRequestError, UsageError
from ..io.files import atomic_write_bytes
from ..io.memory import check_fits
from ..training.run_folder import RunFolder
from ..training.run_record import (
    RunRecorder,
    RunSettings,
    check_same_data,
    default_run_dir,
    originals_for,
    read_run_config,
    trim_metrics,
    write_run_config,
)
from ..training.trainer import Progress, check_enough_data
from .api import GAN, VAE, load_model, model_class
from .console import ProgressDisplay, StopSignal
from .options import MODEL_OPTIONS, check_options, memory_usage_error, stretch_batchnorm, usage_error
from .remedies import divergence_advice

EXIT_INTERRUPTED = 130
# Run options whose saved value a resumed run keeps: giving them again is a mistake worth naming.
SAVED_RUN_OPTIONS = ("dataset", "n_train", "model", "seed", "conditional")


@dataclass
class Run:
    """A run set up and ready to train: its model, settings and data, and whether it resumes."""

    model: GAN | VAE
    settings: RunSettings
    dataset: Dataset
    resumed: bool
    fd: Any = None


def cmd_train(args: argparse.Namespace) -> int:
    folder = None
    try:
        with StopSignal() as stop:  # from the start, so a signal during setup also ends cleanly
            folder = RunFolder.claim(_run_dir(args), resuming=bool(args.resume))
            run = _set_up(args, folder, stop)
            if run is None:
                return EXIT_INTERRUPTED
            code = _train(run, folder.path, stop)
        if code == 0 and not run.settings.no_eval:
            _write_eval(folder.path, run.model, run.settings.data_dir, run.dataset)
    finally:
        if folder is not None:
            folder.release()
    if code == 0:
        print(f"done: {folder.path}/samples.png, checkpoint.npz, metrics.jsonl", file=sys.stderr)
    return code


def _run_dir(args: argparse.Namespace) -> Path:
    if args.resume:
        return Path(args.resume)
    model = (args.model or "default") + ("-conditional" if args.conditional else "")
    return Path(args.out) if args.out else default_run_dir(args.dataset or "digits", model)


def _set_up(args: argparse.Namespace, folder: RunFolder, stop: StopSignal) -> Run | None:
    """Everything before the first step; a failure, or a signal, undoes the start."""
    try:
        stop.immediate = True  # no step to finish yet: the first signal ends a start that takes long
        run = _resume(args, folder.path) if args.resume else _start(args)
        run.model.dataset_name = run.dataset.name
        check_enough_data(len(run.dataset), run.model.config)  # before anything is written
        if not run.settings.no_eval:
            run.fd = fd_tracker(run.model, run.dataset, run.settings.data_dir)
        stop.immediate = False
        if stop.received is None:
            if run.resumed:
                trim_metrics(folder.path / "metrics.jsonl", run.model.step)
            write_run_config(folder.path, run.settings, run.model, run.dataset)
            return run
    except BaseException:
        folder.abandon()
        raise
    folder.abandon()
    print(f"{signal.Signals(stop.received).name}: stopped before training started", file=sys.stderr)
    return None


# -- a new run --------------------------------------------------------------------------------


def _given_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in MODEL_OPTIONS if getattr(args, k) is not None}


def _total_steps(args: argparse.Namespace, n: int, batch_size: int, saved: int | None = None) -> int:
    if args.steps is not None:
        return args.steps
    if args.epochs is None and saved is not None:
        return saved
    return max(1, math.ceil((args.epochs or 5) * (n // batch_size)))


def _load_data(settings: RunSettings) -> Dataset:
    if settings.n_train is not None:
        check_fits(generated_bytes(settings.dataset, settings.n_train) or 0, f"--n-train {settings.n_train}",
                   UsageError)
    return load_dataset(settings.dataset, data_dir=settings.data_dir, split="train", n=settings.n_train,
                        seed=settings.seed)


def _start(args: argparse.Namespace) -> Run:
    settings = RunSettings(
        dataset=args.dataset or "digits", data_dir=args.data_dir, n_train=args.n_train,
        model=args.model or "default", seed=args.seed or 0, no_eval=args.no_eval,
        overrides=_given_overrides(args), conditional=bool(args.conditional),
        **{k: getattr(args, k) for k in RunSettings.CADENCES if getattr(args, k) is not None},
    )
    cls = model_class(settings.model)
    check_options(cls, settings.model, settings.overrides, settings.conditional)  # before loading data
    dataset = _load_data(settings)
    config = _config(cls.config_class, settings, dataset)
    try:
        model = cls(config, backend=args.backend, seed=settings.seed)  # refused for its size before allocating
    except MemoryRequestError as e:
        raise memory_usage_error(e, settings.overrides) from None
    settings.model = cls.config_class.preset_for(settings.model, dataset.kind)
    settings.total_steps = _total_steps(args, len(dataset), config.rows_per_step)
    return Run(model, settings, dataset, resumed=False)


def _config(configs: Any, settings: RunSettings, dataset: Dataset) -> Any:
    """The config of the run's preset for ``dataset``, with the options given and the dataset's classes."""
    try:
        preset = configs.from_preset(settings.model, dataset.sample_shape, dataset.kind)
        overrides = stretch_batchnorm(settings.overrides, preset)
        overrides.update(_class_options(settings.conditional, dataset))
        return configs.from_preset(settings.model, dataset.sample_shape, dataset.kind, **overrides)
    except (TypeError, ValueError) as e:
        raise usage_error(e) from None


def _class_options(conditional: bool, dataset: Dataset) -> dict[str, Any]:
    """The config fields of a conditional model for ``dataset`` (its class count and names); none for others."""
    if not conditional:
        return {}
    if dataset.labels is None:
        raise UsageError(f"--conditional: dataset {dataset.name} has no class labels; use digits, mnist, "
                         "fashion-mnist, or an .npz file holding x, y (class labels) and optionally names")
    return {"n_classes": dataset.n_classes, "class_names": list(dataset.class_names)}


# -- a resumed run ----------------------------------------------------------------------------


def _resume(args: argparse.Namespace, run_dir: Path) -> Run:
    if args.out is not None:
        raise UsageError(f"--out: a resumed run stays in its folder ({run_dir}); drop --out")
    saved, config = read_run_config(run_dir)
    for key in SAVED_RUN_OPTIONS:
        given = getattr(args, key)
        if given is not None and given != getattr(saved, key):
            raise UsageError(
                f"--{key.replace('_', '-')}: a resumed run keeps its saved {key} ({getattr(saved, key)!r}); "
                "drop the option, or start a new run with --out"
            )
    check_options(model_class(saved.model), saved.model, _given_overrides(args), saved.conditional)
    model, recorded = _resumed_model(args, run_dir, saved, config)
    _apply_resume_options(args, model)
    settings = replace(
        saved, data_dir=args.data_dir or saved.data_dir, no_eval=saved.no_eval or args.no_eval,
        **{k: getattr(args, k) for k in RunSettings.CADENCES if getattr(args, k) is not None},
    )
    dataset = _load_data(settings)
    check_same_data(run_dir, recorded, dataset)
    settings.total_steps = _total_steps(args, len(dataset), model.config.rows_per_step, saved.total_steps)
    return Run(model, settings, dataset, resumed=True)


def _resumed_model(args: argparse.Namespace, run_dir: Path, saved: RunSettings, config: dict) -> tuple[GAN, Any]:
    """The model to continue, and the fingerprint of the data it was trained on (``None`` if not recorded)."""
    checkpoint = run_dir / "checkpoint.npz"
    if checkpoint.exists():
        model = load_model(str(checkpoint), backend=args.backend)
        print(f"resuming {run_dir} at step {model.step}", file=sys.stderr)
        return model, read_meta(checkpoint).get("training_data")
    try:  # stopped before its first checkpoint: step 0 is the saved model, freshly initialised
        cls = model_class(saved.model)
        model = cls(cls.config_class.from_json(config.get("model")), backend=args.backend, seed=saved.seed)
    except (TypeError, ValueError) as e:
        raise UsageError(f"--resume {run_dir}: no checkpoint yet and config.json has no usable model ({e})") from None
    print(f"resuming {run_dir}: no checkpoint was written yet, starting at step 0", file=sys.stderr)
    return model, config.get("dataset")


def _apply_resume_options(args: argparse.Namespace, model: GAN) -> None:
    """Apply --lr-g/--lr-d/--real-label to a resumed run; refuse changes to its architecture."""
    for key, value in _given_overrides(args).items():
        current = getattr(model.config, key)
        if key in model.config.RESUMABLE:
            if value != current:
                setattr(model.config, key, value)
                print(f"resuming with --{key.replace('_', '-')} {value:g} (was {current:g})", file=sys.stderr)
            continue
        if key.endswith("_batchnorm"):
            n = len(getattr(model.config, key.replace("batchnorm", "hidden")))
            value, current = (v if isinstance(v, list) else [v] * n for v in (value, current))
        if value != current:
            raise UsageError(
                f"--{key.replace('_', '-')}: a resumed run keeps its saved model ({key} = {current}); "
                "drop the option, or start a new run with --out"
            )


# -- training, and how it ends ----------------------------------------------------------------


def _train(run: Run, run_dir: Path, stop: StopSignal) -> int:
    model, settings, dataset = run.model, run.settings, run.dataset
    total = settings.total_steps
    print(
        f"training {settings.model} on {dataset.name} ({len(dataset)} samples) with {model.backend.name}: "
        f"{total} steps of batch {model.config.batch_size} -> {run_dir}",
        file=sys.stderr,
    )
    originals = originals_for(model, settings.dataset, settings.data_dir, dataset)
    recorder = RunRecorder(run_dir, model, settings, dataset, run.resumed, run.fd, originals)
    display = ProgressDisplay(metrics=model.PROGRESS)

    def on_step(p: Progress) -> bool:
        display.update(p)
        recorder(p)
        return stop.received is not None

    try:
        # Overflow on the way to NaN is expected once training diverges; the guard reports it.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            model.fit(dataset.x, steps=total, log_every=settings.log_every, callback=on_step,
                    y=dataset.labels if model.config.conditional else None)
            recorder.finish()
    except DivergenceError as e:
        advice = divergence_advice(e, model.config, settings.model, run_dir, _saved_step(run_dir))
        _describe_kept(run_dir, run)
        raise UsageError(advice) from None
    except OSError as e:  # a full disk, say: name the file and what is kept
        raise UsageError(f"{e.filename or run_dir}: cannot write ({e.strerror or e}); {_kept(run_dir)}") from None
    except KeyboardInterrupt:  # a second signal: out now, without saving
        display.close()
        print(f"interrupted again at step {model.step}: {_kept(run_dir)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        recorder.close()
        display.close()
    if stop.received is not None:
        print(
            f"{signal.Signals(stop.received).name}: stopped at step {model.step} of {total}; checkpoint saved to "
            f"{recorder.checkpoint}\n{_resume_hint(run_dir)}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 0


def _describe_kept(run_dir: Path, run: Run) -> None:
    """After a divergence, ``config.json`` describes the checkpoint kept, not the settings that diverged
    (a resume may have changed the learning rates)."""
    try:
        saved = read_meta(run_dir / "checkpoint.npz").get("config")
        kept = type(run.model.config).from_json(saved)
    except (CheckpointError, TypeError, ValueError):
        return  # no checkpoint yet: the settings that diverged are the run's only description
    run.model.config = kept
    write_run_config(run_dir, run.settings, run.model, run.dataset)


def _saved_step(run_dir: Path) -> int | None:
    """The step of the checkpoint on disk: what is kept, whatever the process believed it wrote."""
    try:
        step = read_meta(run_dir / "checkpoint.npz").get("step")
    except CheckpointError:
        return None
    return step if isinstance(step, int) else None


def _kept(run_dir: Path) -> str:
    step = _saved_step(run_dir)
    if step is None:
        return "no checkpoint was saved"
    return f"the checkpoint of step {step} is kept in {run_dir / 'checkpoint.npz'}; {_resume_hint(run_dir)}"


def _resume_hint(run_dir: Path) -> str:
    return f"resume with: python -m tinygan train --resume {shlex.quote(str(run_dir))}"


def _write_eval(run_dir: Path, model: GAN, data_dir: str | None, dataset: Dataset | None = None) -> None:
    result = evaluate_model(model, data_dir=data_dir)
    if result is None and dataset is not None:  # the user's own data: measured against itself
        result = evaluate_data(model, dataset)
    if result is not None:
        atomic_write_bytes(run_dir / "eval.json", json.dumps(result, indent=2).encode())
