"""A run folder: its settings, the files it holds, and how a training run records itself there.

``tinygan train`` writes ``config.json`` (the :class:`RunSettings` and the model's config),
``metrics.jsonl``, ``checkpoint.npz``, ``samples.png`` and ``eval.json`` into one folder, each
replaced atomically. :class:`RunRecorder` is the one place that decides what is written when:
metric records at log intervals, checkpoints, sample pictures and Fréchet-distance points,
each at its own cadence.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .data import DATASETS, Dataset
from .errors import UsageError
from .files import atomic_write_bytes
from .gan import seeded_latents
from .images import image_grid, scatter_png, write_png
from .reconstructions import write_reconstructions
from .trainer import Progress

# Files a run folder holds; each is replaced atomically (through a ".<name>.*.tmp" file).
RUN_FILES = ("checkpoint.npz", "config.json", "samples.png", "eval.json", "metrics.jsonl", "reconstructions.png")


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
        if not isinstance(settings.no_eval, bool) or not isinstance(settings.overrides, dict):
            raise ValueError("no_eval or overrides have the wrong type")
        return settings


def write_run_config(run_dir: Path, settings: RunSettings, model: Any, dataset: Dataset) -> None:
    """``config.json``: the run's settings, the model's full config, the data it trains on."""
    config = {
        "run": asdict(settings),
        "model": model.config.to_json(),
        "dataset": {"name": dataset.name, "n": len(dataset), "kind": dataset.kind},
        "backend": model.backend.name,
    }
    atomic_write_bytes(run_dir / "config.json", json.dumps(config, indent=2).encode())


def read_run_config(run_dir: Path) -> tuple[RunSettings, dict[str, Any]]:
    """The settings and model config saved in ``run_dir/config.json``; a :class:`UsageError` names the problem."""
    path = run_dir / "config.json"
    try:
        saved = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"--resume {run_dir}: no config.json there; is it a tinygan run folder?") from None
    except (OSError, ValueError, RecursionError) as e:
        raise UsageError(f"--resume {run_dir}: config.json is unreadable ({e})") from None
    if isinstance(saved, dict) and "run" not in saved and isinstance(saved.get("args"), dict):
        saved["run"] = {**saved["args"], "total_steps": saved.get("total_steps")}  # written before 0.2
    try:
        settings = RunSettings.from_json(saved.get("run") if isinstance(saved, dict) else None)
    except (TypeError, ValueError) as e:
        raise UsageError(f"--resume {run_dir}: config.json is not a tinygan run description ({e})") from None
    return settings, saved.get("model")


def default_run_dir(dataset: str, model: str) -> Path:
    """``runs/<dataset>-<model>``, numbered ``-2``, ``-3``, … when taken."""
    stem = Path(dataset).stem if dataset not in DATASETS else dataset
    base = Path("runs") / f"{stem}-{model}"
    candidate, k = base, 2
    while candidate.exists():
        candidate, k = Path(f"{base}-{k}"), k + 1
    return candidate


def prepare_run_dir(path: Path, resuming: bool) -> bool:
    """Create the run folder and prove it writable before any training time is spent.

    Returns whether the folder was created. When resuming, temporary files left by a run that
    was killed while writing are removed (the files they were meant to replace are intact).
    """
    option = "--resume" if resuming else "--out"
    if not resuming and (path / "checkpoint.npz").exists():
        raise UsageError(
            f"--out {path}: already holds a trained run; continue it with --resume {path} or choose another --out"
        )
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot write there ({e.strerror or e})") from None
    if resuming:
        for name in RUN_FILES:
            for stale in path.glob(f".{name}.*.tmp"):
                stale.unlink(missing_ok=True)
    return created


def trim_metrics(path: Path, step: int) -> None:
    """Keep the metric records up to ``step``: a resumed run writes the later ones again.

    Records logged after the last checkpoint by a run that was killed, and a line cut short by
    the kill, would otherwise appear twice or break the JSON-lines file.
    """
    try:
        lines = path.read_bytes().splitlines(keepends=True)
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
    if len(kept) != len(lines):
        atomic_write_bytes(path, b"".join(kept))


def write_samples(path: Path, model: Any, z: np.ndarray, real: Dataset | None = None) -> None:
    """A grid of generated images, or for 2-D points a plot of generated over real points."""
    fake = model.sample(z.shape[0], z=z)
    config = model.config
    if config.data_kind == "image" and len(config.data_shape) == 2:
        write_png(path, image_grid(fake))
    elif config.data_kind == "image":
        side = math.isqrt(config.data_dim)
        write_png(path, image_grid(fake.reshape(-1, side, side)))
    else:
        reference = None if real is None else real.x[: z.shape[0]]
        scatter_png(path, fake[:, :2], None if reference is None else reference[:, :2])


class RunRecorder:
    """What a training run writes while it trains, each at its cadence in ``settings``.

    ``model`` is a :class:`tinygan.GAN` (its ``save`` writes the model and its data position).

    Called after every step with the trainer's :class:`~tinygan.trainer.Progress`: metric records
    at log intervals, a checkpoint every ``checkpoint_every`` steps, ``samples.png`` (from fixed
    latents) every ``sample_every`` steps, and with an ``fd`` callable a Fréchet-distance record
    every ``eval_every`` steps. With ``originals`` (images, for a model that reconstructs), each
    ``samples.png`` comes with ``reconstructions.png``. ``last_saved`` is the step of the newest
    checkpoint (``None`` before the first).
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
        n_fixed = 2500 if dataset.kind == "points" else 100
        self.z_fixed = seeded_latents(n_fixed, model.config.latent_dim, settings.seed + 1)
        # A fresh run starts the file anew; a resumed one appends (its records were trimmed to its step).
        self.metrics = open(run_dir / "metrics.jsonl", "a" if resumed else "w")  # noqa: SIM115

    def __call__(self, p: Progress) -> None:
        s = self.settings
        if p.record is not None:
            self._write(p.record)
        if p.step % s.checkpoint_every == 0:
            self.save()
        if p.step % s.sample_every == 0:
            self.samples()
        if self.fd is not None and p.step % s.eval_every == 0:
            self.model.check_finite()
            self._write({"step": p.step, "fd": self.fd(self.model)})

    def _write(self, record: dict[str, Any]) -> None:
        self.metrics.write(json.dumps(record) + "\n")
        self.metrics.flush()

    def save(self) -> None:
        """A checkpoint of the model and its data position (refused if anything is not finite)."""
        self.model.save(str(self.checkpoint))
        self.last_saved = self.model.step

    def samples(self) -> None:
        self.model.check_finite()
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
