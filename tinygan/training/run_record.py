"""A run folder: its settings, the files it holds, and how a training run records itself there.

``tinygan train`` writes ``config.json`` (the :class:`RunSettings`, the model's config and a
fingerprint of the data), ``metrics.jsonl``, ``checkpoint.npz``, ``samples.png`` and
``eval.json`` into one folder (claimed and locked by :mod:`tinygan.training.run_folder`), each replaced
atomically but for ``metrics.jsonl``, which is appended to without ever following a link.
:class:`RunRecorder` is the one place that decides what is written when: metric records at log
intervals, checkpoints, sample pictures and Fréchet-distance points, each at its own cadence.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..data import DATASETS, Dataset, load_dataset
from ..evaluation.pictures import write_reconstructions, write_samples
from ..io.errors import UsageError
from ..io.files import atomic_write_bytes, open_for_append, read_regular
from ..models.latents import seeded_latents
from .guard import check_parameters
from .trainer import Progress


@dataclass
class RunSettings:
    """What a training run was asked to do, as saved in ``config.json`` and read back on resume.

    ``overrides`` are the model options given on top of the ``model`` preset; the cadences are in
    steps; ``total_steps`` is the run's length.
    """

    dataset: str = "digits"
    data_dir: str | None = None
    n_train: int | None = None
    model: str = "default"
    seed: int = 0
    total_steps: int = 1
    log_every: int = 100
    sample_every: int = 500
    checkpoint_every: int = 1000
    eval_every: int = 500
    no_eval: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)
    conditional: bool = False

    CADENCES = ("log_every", "sample_every", "checkpoint_every", "eval_every")

    @classmethod
    def from_json(cls, data: Any) -> RunSettings:
        """Settings from ``config.json``'s ``"run"`` entry; raises ``ValueError`` on anything malformed."""
        if not isinstance(data, dict):
            raise ValueError("run settings are not a mapping")
        missing = [k for k in ("dataset", "seed", "total_steps") if k not in data]
        if missing:
            raise ValueError(f"run settings lack {', '.join(missing)}")
        kept = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        settings = cls(**kept)
        optional = {"data_dir": str, "n_train": int}
        for name in ("dataset", "model"):
            if not isinstance(getattr(settings, name), str):
                raise ValueError(f"{name} is not a name")
        for name, kind in optional.items():
            value = getattr(settings, name)
            if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
                raise ValueError(f"{name} {value!r} is not a {kind.__name__}")
        for name in ("seed", "total_steps", *cls.CADENCES):
            value = getattr(settings, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "seed" else 1):
                raise ValueError(f"{name} {value!r} is not a valid count")
        flags = (settings.no_eval, settings.conditional)
        if not all(isinstance(v, bool) for v in flags) or not isinstance(settings.overrides, dict):
            raise ValueError("no_eval, conditional or overrides have the wrong type")
        return settings


def write_run_config(run_dir: Path, settings: RunSettings, model: Any, dataset: Dataset) -> None:
    """``config.json``: the run's settings, the model's full config, the data it trains on."""
    config = {
        "run": asdict(settings),
        "model": model.config.to_json(),
        "dataset": {"name": dataset.name, "kind": dataset.kind, **data_record(dataset, model)},
        "backend": model.backend.name,
    }
    atomic_write_bytes(run_dir / "config.json", json.dumps(config, indent=2).encode())


def data_record(dataset: Dataset, model: Any = None) -> dict[str, Any]:
    """What a run records of its training data: the number of samples and their SHA-256, and the labels'
    SHA-256 for a conditional model, which trains on them too."""
    record = {"n": len(dataset), "sha256": dataset.fingerprint()}
    if model is not None and model.config.conditional:
        record["labels_sha256"] = dataset.labels_fingerprint()
    return record


def check_same_data(run_dir: Path, recorded: Any, dataset: Dataset) -> None:
    """Refuse to resume on data other than the run's: a changed file would silently make another run.

    ``recorded`` is :func:`data_record` as the run saved it; runs that saved none are not checked.
    """
    if not isinstance(recorded, dict) or not isinstance(recorded.get("sha256"), str):
        return
    now = data_record(dataset)
    labels = recorded.get("labels_sha256")
    if isinstance(labels, str) and labels != dataset.labels_fingerprint():
        raise UsageError(f"--resume {run_dir}: the class labels of the training data ({dataset.name}) changed since "
                         "the run was saved; resuming is refused: put the original data back, or start a new run "
                         "with --out")
    if now["sha256"] != recorded["sha256"]:
        raise UsageError(
            f"--resume {run_dir}: the training data ({dataset.name}) changed since the run was saved "
            f"({now['n']} samples with SHA-256 {now['sha256'][:12]}... now, {recorded.get('n')} with "
            f"{recorded['sha256'][:12]}... then); resuming is refused: put the original data back, "
            "or start a new run with --out"
        )


def read_run_config(run_dir: Path) -> tuple[RunSettings, dict[str, Any]]:
    """The settings in ``run_dir/config.json``, and all it holds; a :class:`UsageError` names the problem.

    The second value holds the model's config under ``"model"`` and the data's record under ``"dataset"``.
    """
    path = run_dir / "config.json"
    try:
        saved = json.loads(read_regular(path))
    except FileNotFoundError:
        raise UsageError(f"--resume {run_dir}: no config.json there; is it a tinygan run folder?") from None
    except (OSError, ValueError, RecursionError) as e:
        detail = getattr(e, "strerror", None) or e
        raise UsageError(f"--resume {run_dir}: config.json is unreadable ({detail})") from None
    if isinstance(saved, dict) and "run" not in saved and isinstance(saved.get("args"), dict):
        saved["run"] = {**saved["args"], "total_steps": saved.get("total_steps")}  # written before 0.2
    try:
        settings = RunSettings.from_json(saved.get("run") if isinstance(saved, dict) else None)
    except (TypeError, ValueError) as e:
        raise UsageError(f"--resume {run_dir}: config.json is not a tinygan run description ({e})") from None
    return settings, saved


def default_run_dir(dataset: str, model: str) -> Path:
    """``runs/<dataset>-<model>``, numbered ``-2``, ``-3``, … when taken."""
    stem = Path(dataset).stem if dataset not in DATASETS else dataset
    base = Path("runs") / f"{stem}-{model}"
    candidate, k = base, 2
    while candidate.exists():
        candidate, k = Path(f"{base}-{k}"), k + 1
    return candidate


def trim_metrics(path: Path, step: int) -> None:
    """Keep the metric records up to ``step``: a resumed run writes the later ones again.

    Records logged after the last checkpoint by a run that was killed, and a line cut short by
    the kill, would otherwise appear twice or break the JSON-lines file.
    """
    try:
        lines = read_regular(path).splitlines(keepends=True)
    except FileNotFoundError:
        return
    kept = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        at = record.get("step") if isinstance(record, dict) else None
        if line.endswith(b"\n") and isinstance(at, (int, float)) and at <= step:
            kept.append(line)
    atomic_write_bytes(path, b"".join(kept))  # always anew: a hard link planted there is broken off


RECONSTRUCTED = 30  # images shown in a run's reconstructions.png


def originals_for(model: Any, dataset_name: str, data_dir: str | None, dataset: Dataset) -> Any:
    """Images whose reconstructions a run shows: the first test images of a named dataset, else the first
    training images; ``None`` for a model that does not reconstruct, or for points."""
    if not model.RECONSTRUCTS or dataset.kind != "image":
        return None
    if dataset_name in DATASETS:
        return load_dataset(dataset_name, data_dir=data_dir, split="test", n=RECONSTRUCTED).x
    return dataset.x[:RECONSTRUCTED]


class RunRecorder:
    """What a training run writes while it trains, each at its cadence in ``settings``.

    ``model`` is a :class:`tinygan.GAN` (its ``save`` writes the model and its data position).

    Called after every step with the trainer's :class:`~tinygan.training.trainer.Progress`: metric records
    at log intervals, a checkpoint every ``checkpoint_every`` steps, ``samples.png`` (from fixed
    latents) every ``sample_every`` steps, and with an ``fd`` callable a Fréchet-distance record
    every ``eval_every`` steps. With ``originals`` (images, for a model that reconstructs), each
    ``samples.png`` comes with ``reconstructions.png``. Nothing is written from a diverged state
    (:mod:`tinygan.training.guard`), so the checkpoint on disk is always the last good one. ``last_saved`` is
    the step of the newest checkpoint (``None`` before the first).
    """

    def __init__(
        self,
        run_dir: Path,
        model: Any,
        settings: RunSettings,
        dataset: Dataset,
        resumed: bool,
        fd: Any = None,
        originals: np.ndarray | None = None,
    ) -> None:
        self.run_dir, self.model = run_dir, model
        self.settings, self.dataset, self.fd, self.originals = settings, dataset, fd, originals
        self.checkpoint = run_dir / "checkpoint.npz"
        self.last_saved = model.step if self.checkpoint.exists() else None
        self.data = data_record(dataset, model)
        self.guard = lambda: check_parameters(model)  # until a step brings the trainer's guard
        n_fixed = 2500 if dataset.kind == "points" else 100
        self.z_fixed = seeded_latents(n_fixed, model.config.latent_dim, settings.seed + 1)
        self.metrics_path = run_dir / "metrics.jsonl"
        if not resumed:  # a fresh run starts the file anew; a resumed one appends to its trimmed records
            atomic_write_bytes(self.metrics_path, b"")
        self.metrics = open_for_append(self.metrics_path)

    def __call__(self, p: Progress) -> None:
        s = self.settings
        self.guard = p.guard or self.guard
        if p.record is not None:
            self._write(p.record)
        if p.step % s.checkpoint_every == 0:
            self.save()
        if p.step % s.sample_every == 0:
            self.samples()
        if self.fd is not None and p.step % s.eval_every == 0:
            self.guard()
            self._write({"step": p.step, "fd": self.fd(self.model)})

    def _write(self, record: dict[str, Any]) -> None:
        try:
            self.metrics.write((json.dumps(record) + "\n").encode())
            self.metrics.flush()
        except OSError as e:  # a failed write names no file: name it
            raise OSError(e.errno, e.strerror or str(e), str(self.metrics_path)) from None

    def save(self) -> None:
        """A checkpoint of the model, its data position and its data's fingerprint (refused if diverged)."""
        self.guard()
        self.model.save(str(self.checkpoint), {"training_data": self.data})
        self.last_saved = self.model.step

    def samples(self) -> None:
        self.guard()
        write_samples(self.run_dir / "samples.png", self.model, self.z_fixed, self.dataset)
        if self.originals is not None:
            write_reconstructions(self.run_dir / "reconstructions.png", self.model, self.originals)

    def finish(self) -> None:
        """The last checkpoint (unless this step's is written) and samples at the end of the run."""
        if self.last_saved != self.model.step:
            self.save()
        self.samples()

    def close(self) -> None:
        self.metrics.close()
