"""A run folder: where it goes, what it holds, and what a run shows while it trains.

``tinygan train`` writes ``samples.png``, ``metrics.jsonl``, ``config.json``,
``checkpoint.npz`` and ``eval.json`` into one folder, each replaced atomically.
This module makes and checks that folder, draws the sample picture, shows
progress, and turns Ctrl-C / SIGTERM into a clean stop after the current step.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .data import DATASETS, Dataset
from .files import atomic_write_bytes
from .gan import GAN
from .images import image_grid, scatter_png, write_png
from .trainer import Progress


class UsageError(ValueError):
    """An option value that cannot be used; the message names the option."""


def default_run_dir(dataset: str, model: str) -> Path:
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


# Files a run folder holds; each is replaced atomically (through a ".<name>.*.tmp" file).
RUN_FILES = ("checkpoint.npz", "config.json", "samples.png", "eval.json", "metrics.jsonl")


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
        if self.tty and not getattr(self, "closed", False):
            self.stream.write("\n")
            self.stream.flush()
        self.closed = True


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
