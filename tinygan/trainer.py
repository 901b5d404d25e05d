"""The training loop: batches from the dataset, one step at a time, metrics at log intervals.

Data flows one way: a host array (uint8 images or float vectors) is copied to
the device once; each step gathers a shuffled batch there, scales it into the
model's range, and hands it with fresh latent noise to :meth:`GAN.train_step`.
Metrics stay on the device and are read only at log intervals, so a GPU never
waits on the host inside the loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .backend import Array
from .data.validate import check_samples
from .errors import DataError, DivergenceError  # DivergenceError: still importable from here

if TYPE_CHECKING:
    from .gan import GAN


@dataclass
class Progress:
    """What a training callback is told after every step.

    ``step`` counts steps done so far (from the start of the run, resumes included);
    ``record`` holds the metrics logged at this step, or ``None`` between log intervals.
    """

    step: int
    total: int
    epoch: int
    record: dict[str, float] | None


class Batches:
    """Shuffled mini-batches gathered on the device from data that stays in its compact dtype.

    The position in the data (``perm``, ``pos``, ``epoch``) lives in ``gan.data_state`` so a
    checkpoint can restore it exactly. A new permutation is drawn at each epoch; the last
    partial batch of an epoch is dropped.
    """

    def __init__(self, x: np.ndarray, gan: GAN, batch_size: int) -> None:
        self.gan, self.batch_size = gan, batch_size
        self.x = gan.backend.asarray(x)  # no copy on NumPy; one upload to the GPU on CuPy
        self.n = x.shape[0]
        self.scale = 1.0 / 255.0 if x.dtype == np.uint8 else 1.0
        self.state = gan.data_state
        if "perm" in self.state and self.state["perm"].shape[0] != self.n:
            self.state.clear()  # the data changed size since the checkpoint: start a fresh epoch
        self.state.setdefault("pos", 0)
        self.state.setdefault("epoch", 0)

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.batch_size

    def next(self) -> Array:
        """The next batch, ``(batch_size, data_dim)`` in the generator's output range."""
        st, xp, b = self.state, self.gan.xp, self.batch_size
        if "perm" not in st or st["pos"] + b > self.n:
            st["perm"] = self.gan.rng.permutation(self.n)
            st["pos"] = 0
            st["epoch"] += 1
        idx = st["perm"][st["pos"] : st["pos"] + b]
        st["pos"] += b
        batch = xp.astype(xp.take(self.x, idx, axis=0), self.gan.float)
        if self.scale != 1.0:
            batch *= self.scale
        return self.gan.to_model_space(batch)


def check_training_data(x: Any, data_shape: tuple[int, ...], kind: str, name: str = "training data") -> np.ndarray:
    """Validate ``x`` and return it as ``(N, data_dim)`` (a view where possible).

    Accepts ``(N, *data_shape)`` or ``(N, data_dim)``; uint8, or floats (in [0, 1] for images), all finite.
    """
    return check_samples(x, name, data_shape, kind)


def fit(
    gan: GAN,
    x: np.ndarray,
    epochs: float | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    log_every: int = 100,
    callback: Callable[[Progress], bool | None] | None = None,
) -> list[dict[str, float]]:
    """Train ``gan`` on ``x`` until it has taken ``steps`` steps (or ``epochs`` passes over ``x``).

    ``x``: ``(N, *data_shape)`` or ``(N, data_dim)``; uint8 images, float images in [0, 1], or float
    points. Counts are totals for the run, not increments: a GAN loaded from a checkpoint continues
    where it stopped and ends where an uninterrupted run would. ``callback(progress)`` runs after
    every step; returning ``True`` stops training. A non-finite metric or parameter raises
    :class:`DivergenceError` at the next log interval. Returns one record per log interval with
    ``step, epoch, d_loss, g_loss, d_real, d_fake, steps_per_s`` (interval means).
    """
    config = gan.config
    batch_size = batch_size or config.batch_size
    if batch_size < 1 or batch_size % config.pack:
        raise ValueError(f"batch size must be a positive multiple of pack={config.pack}, got {batch_size}")
    if log_every < 1:
        raise ValueError(f"log_every must be >= 1, got {log_every}")
    x = check_training_data(x, config.data_shape, config.data_kind)
    if x.shape[0] < batch_size:
        raise DataError(f"training data: {x.shape[0]} samples is fewer than one batch of {batch_size}")
    batches = Batches(x, gan, batch_size)
    if steps is None:
        steps = math.ceil((1 if epochs is None else epochs) * batches.steps_per_epoch)
    history: list[dict[str, float]] = []
    sums: dict[str, Array] = {}
    count, tic = 0, time.perf_counter()
    while gan.step < steps:
        if config.lr_decay != 1.0:  # lr₀ · decay^(t / steps): a function of the step, so resumes match
            factor = config.lr_decay ** (gan.step / steps)
            gan.opt_g.lr, gan.opt_d.lr = config.lr_g * factor, config.lr_d * factor
        metrics = gan.train_step(batches.next(), gan.noise(batch_size))
        sums = {k: sums[k] + v for k, v in metrics.items()} if sums else metrics
        count += 1
        record = None
        if gan.step % log_every == 0 or gan.step == steps:
            record = {k: float(v) / count for k, v in sums.items()}  # the one host read per interval
            toc = time.perf_counter()
            record = {"step": gan.step, "epoch": batches.state["epoch"], **record}
            record["steps_per_s"] = count / max(toc - tic, 1e-9)
            bad = [k for k, v in record.items() if not math.isfinite(v)]
            if bad:
                raise DivergenceError(f"training diverged at step {gan.step}: {bad[0]} is {record[bad[0]]}")
            gan.check_finite()
            history.append(record)
            sums, count, tic = {}, 0, toc
        if callback is not None and callback(Progress(gan.step, steps, batches.state["epoch"], record)):
            break
    return history
