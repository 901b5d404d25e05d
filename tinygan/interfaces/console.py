"""What a training run shows on the console while it trains, and how Ctrl-C stops it cleanly."""

from __future__ import annotations

import signal
import sys
import time
from typing import Any

from ..models.gan import GANModel
from ..training.trainer import Progress


class ProgressDisplay:
    """A one-line progress bar on a terminal; a plain line per log record otherwise.

    ``metrics`` formats a metric record for the line (a model's ``PROGRESS``; a GAN's by default).
    """

    def __init__(self, stream: Any = sys.stderr, metrics: str = GANModel.PROGRESS) -> None:
        self.stream, self.metrics = stream, metrics
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
            f"epoch {p.epoch} | {self.metrics.format(**r)} | {r['steps_per_s']:.1f} steps/s "
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
