"""The training loop: batches from the dataset, one step at a time, metrics at log intervals.

Data flows one way: a host array (uint8 images or float vectors) is copied to
the device once; each step gathers a shuffled batch there, scales it into the
model's range, and hands it to the model's ``train_step``. Metrics stay on the
device and are read only at log intervals, so a GPU never waits on the host
inside the loop.

The batching code moves where training is in the data (:class:`~tinygan.training.state.DataPosition`),
which a checkpoint saves beside the model's state (:mod:`tinygan.training.state`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend import Array, Random, unit_floats
from ..data.validate import check_labels, check_samples
from ..io.errors import DataError
from .guard import check_parameters, check_record
from .state import DataPosition

__all__ = ["Batches", "Progress", "fit"]


@dataclass
class Progress:
    """What a training callback is told after every step.

    ``step`` counts steps done so far (from the start of the run, resumes included);
    ``record`` holds the metrics logged at this step, or ``None`` between log intervals.
    ``guard()`` raises :class:`DivergenceError` if the state has diverged (:mod:`tinygan.training.guard`),
    the losses since the last record included: call it before saving a state between records.
    """

    step: int
    total: int
    epoch: int
    record: dict[str, float] | None
    guard: Callable[[], None] | None = None


class Batches:
    """Shuffled mini-batches gathered on the device from data that stays in its compact dtype.

    A new order is drawn from ``rng`` at each epoch; the last partial batch of an epoch is dropped.
    ``position`` is moved in place, so a checkpoint taken between batches restores it exactly.
    With ``labels``, each batch comes with its labels.
    """

    def __init__(
        self,
        x: np.ndarray,
        position: DataPosition,
        rng: Random,
        batch_size: int,
        dtype: Any,
        labels: np.ndarray | None = None,
    ) -> None:
        backend = rng.backend
        self.xp, self.rng, self.batch_size, self.dtype = backend.xp, rng, batch_size, dtype
        self.x = backend.asarray(x)  # no copy on NumPy; one upload to the GPU on CuPy
        self.labels = None if labels is None else backend.asarray(np.asarray(labels, np.int64))
        self.n = x.shape[0]
        self.position = position
        if position.perm is not None and position.perm.shape[0] != self.n:
            position.perm, position.pos = None, 0  # the data changed size since the checkpoint: a fresh epoch

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.batch_size

    def next(self) -> tuple[Array, Array | None]:
        """The next batch, ``(batch_size, data_dim)`` floats (images in [0, 1]), and its labels."""
        p, xp, b = self.position, self.xp, self.batch_size
        if p.perm is None or p.pos + b > self.n:
            p.perm, p.pos = self.rng.permutation(self.n), 0
            p.epoch += 1
        idx = p.perm[p.pos : p.pos + b]
        p.pos += b
        batch = unit_floats(xp, xp.take(self.x, idx, axis=0), self.dtype)
        return batch, None if self.labels is None else xp.take(self.labels, idx, axis=0)


def fit(
    model: Any,
    x: np.ndarray,
    position: DataPosition | None = None,
    epochs: float | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    log_every: int = 100,
    callback: Callable[[Progress], bool | None] | None = None,
    labels: np.ndarray | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` on ``x`` until it has taken ``steps`` steps (or ``epochs`` passes over ``x``).

    ``x``: ``(N, *data_shape)`` or ``(N, data_dim)``; uint8 images, float images in [0, 1], or float
    points. ``labels``: integer classes ``(N,)`` in ``0..n_classes−1``, which a conditional model needs
    and an unconditional one refuses. Counts are totals for the run, not increments: a model loaded from
    a checkpoint continues where it stopped and ends where an uninterrupted run would. ``position``
    (moved in place) says where in the data to continue. ``callback(progress)`` runs after every step;
    returning ``True`` stops training. A diverged state (:mod:`tinygan.training.guard`: a loss or parameter that
    is not finite or beyond its limit) raises :class:`DivergenceError` at the next log interval. Returns
    one record per log interval: ``step``, ``epoch``, the model's metrics (interval means) and
    ``steps_per_s``.
    """
    config = model.config
    batch_size = batch_size or config.batch_size
    pack = getattr(config, "pack", 1)
    if batch_size < 1 or batch_size % pack:
        raise ValueError(f"batch size must be a positive multiple of pack={pack}, got {batch_size}")
    if log_every < 1:
        raise ValueError(f"log_every must be >= 1, got {log_every}")
    x = check_samples(x, name="training data", data_shape=config.data_shape, kind=config.data_kind)
    labels = _training_labels(model, labels, len(x))
    rows = check_enough_data(len(x), config, batch_size)
    position = DataPosition() if position is None else position
    batches = Batches(x, position, model.rng, rows, model.dtype, labels)
    if steps is None:
        steps = math.ceil((1 if epochs is None else epochs) * batches.steps_per_epoch)
    model.set_horizon(steps)
    log = _MetricLog(model, log_every, steps)
    history: list[dict[str, float]] = []
    while model.step < steps:
        record = log.add(_train_step(model, *batches.next()), position.epoch)
        if record is not None:
            history.append(record)
        if callback is not None and callback(Progress(model.step, steps, position.epoch, record, log.guard)):
            break
    return history


def check_enough_data(n: int, config: Any, batch_size: int | None = None) -> int:
    """The rows one step takes (a batch for each D update); ``DataError`` if ``n`` samples are fewer."""
    batch_size = batch_size or config.batch_size
    n_critic = getattr(config, "n_critic", 1)
    if n < batch_size * n_critic:
        need = f"one batch of {batch_size}" if n_critic == 1 else f"one step's {n_critic} batches of {batch_size}"
        raise DataError(f"training data: {n} samples is fewer than {need}")
    return batch_size * n_critic


def _train_step(model: Any, real: Array, labels: Array | None) -> dict[str, Array]:
    """One step on a batch of data (in [0, 1] for images), with its classes for a conditional model."""
    real = model.to_model_space(real)
    return model.train_step(real) if labels is None else model.train_step(real, labels=labels)


def _training_labels(model: Any, labels: Any, n: int) -> np.ndarray | None:
    """The checked labels of ``n`` samples for ``model``: required by a conditional model, refused by others."""
    k = model.config.n_classes
    if labels is None:
        if k:
            raise DataError(f"training labels: a conditional model ({k} classes) trains on labelled data: "
                            "fit(x, y=labels)")
        return None
    if not model.config.CONDITIONS:
        raise DataError(f"training labels: a {model.config.FAMILY} trains without class labels; call fit(x) without y")
    if not k:
        raise DataError("training labels: given to an unconditional model (n_classes = 0); build one with "
                        "n_classes=K to train on classes")
    return check_labels(labels, n, k, "training labels")


class _MetricLog:
    """Sums a step's device metrics and turns them into a host record at log intervals."""

    def __init__(self, model: Any, every: int, total: int) -> None:
        self.model, self.every, self.total = model, every, total
        self.sums: dict[str, Array] = {}
        self.count, self.tic = 0, time.perf_counter()

    def guard(self) -> None:
        """The divergence guard on the parameters and on the losses summed since the last record."""
        if self.count:
            check_record(self.model.step, {k: float(v) / self.count for k, v in self.sums.items()})
        check_parameters(self.model)

    def add(self, metrics: dict[str, Array], epoch: int) -> dict[str, float] | None:
        model = self.model
        # Start from a copy: a recorded step (cupy-graph) overwrites its metric arrays every step.
        first = not self.sums
        self.sums = {k: v * 1 if first else self.sums[k] + v for k, v in metrics.items()}
        self.count += 1
        if model.step % self.every and model.step != self.total:
            return None
        toc = time.perf_counter()
        means = {k: float(v) / self.count for k, v in self.sums.items()}  # the one host read per interval
        record = {"step": model.step, "epoch": epoch, **means, "steps_per_s": self.count / max(toc - self.tic, 1e-9)}
        check_record(model.step, record)
        check_parameters(model)
        self.sums, self.count, self.tic = {}, 0, toc
        return record


# -- a training checkpoint: the model's state and the data position, in one file ---------------
