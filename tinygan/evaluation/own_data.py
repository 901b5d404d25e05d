"""Metrics of a model trained on a user's own data: a ``.npy``/``.npz`` file or a folder of PNG files.

The data is split once, by a seeded shuffle within each class, into a part the judge learns from
(80%) and a held-out part (20%) that plays the role of a built-in dataset's test split.

* **Labelled images** (a labelled ``.npz``, or a folder with class sub-folders): the judge
  classifier of :mod:`tinygan.evaluation.evaluate` is trained on the first part -- once; it is
  cached under ``~/.cache/tinygan/own-data/`` by the digest of the data, its labels and the recipe
  -- and the model's samples are scored against the held-out part exactly as for Fashion-MNIST:
  ``fd``, ``classes_covered``, ``cis`` and the rest, and ``conditional_accuracy`` for a
  conditional model. The judge needs at least two classes with two samples each.
* **Whatever the data**: :func:`sample_statistics`, which need no classifier, and for a VAE the
  negative ELBO of the held-out rows (held out from the judge; the model saw them unless it was
  trained on fewer rows, e.g. with ``--n-train``).

Without labels the result names the metrics that need them under ``"needs_labels"``.
:func:`evaluate` is the one call for any data, built-in or the user's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import unit_floats
from ..data import Dataset, cache_dir, load_dataset
from ..data.validate import check_labels, check_samples
from ..io.errors import DataError
from ..models.classes import default_names
from ..models.latents import sample_model
from .evaluate import (
    DEFAULT_N,
    LABELLED_IMAGES,
    MIXTURES,
    Classifier,
    FDTracker,
    evaluate_model,
    judge_samples,
    load_or_train_classifier,
)

HELD_OUT = 0.2  # share of each class held out from the judge
NEEDS_LABELS = ("fd", "fd_real_floor", "classes_covered", "max_class_share", "class_kl", "cis", "conditional_accuracy")
NN_SAMPLES, NN_REFERENCE = 500, 2_000  # rows compared by the nearest-neighbour distances
BUILT_IN_SHAPES = {name: (28, 28) for name in LABELLED_IMAGES} | {name: (2,) for name in MIXTURES}


def held_out_split(n: int, labels: np.ndarray | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(kept, held_out)`` of ``n`` rows: :data:`HELD_OUT` of each class (of all rows without labels)."""
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(labels == k) for k in np.unique(labels)]
    kept, held = [], []
    for rows in groups:
        rows = rng.permutation(rows)
        cut = min(max(1, round(HELD_OUT * len(rows))), len(rows) - 1) if len(rows) > 1 else 0
        held.append(rows[:cut])
        kept.append(rows[cut:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))


def _as_values(x: np.ndarray, kind: str) -> np.ndarray:
    """Rows of float32 values: images in [0, 1], points as they are."""
    flat = np.asarray(x).reshape(len(x), -1)
    return unit_floats(np, flat, np.float32) if kind == "image" else flat.astype(np.float32)


def _nearest(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over the rows of ``a`` of the root-mean-square difference to the nearest row of ``b``."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    d2 = (a64**2).sum(1)[:, None] - 2.0 * a64 @ b64.T + (b64**2).sum(1)[None, :]
    return float(np.mean(np.sqrt(np.clip(d2.min(axis=1), 0.0, None) / a.shape[1])))


def sample_statistics(fake: np.ndarray, kept: np.ndarray, held: np.ndarray) -> dict[str, float]:
    """What samples ``fake`` show against real rows without a classifier (all rows of float values).

    * ``mean_gap``: mean absolute difference between the average sample and the average real row,
      value by value (0 when the averages agree; in [0, 1] for images).
    * ``std_ratio``: the samples' spread over the real data's, value by value, averaged (about 1
      when the samples vary as much as the data; near 0 when they collapse to one picture).
    * ``nearest_real``: for each sample, the root-mean-square difference to its nearest real row
      (of the judge's part), averaged; ``nearest_real_floor`` is the same for held-out real rows.
      Far below the floor: the samples copy the data; far above: they do not look like it.
    """
    real = np.concatenate([kept, held])
    spread = real.std(axis=0).mean()
    reference = kept[:NN_REFERENCE]
    result = {
        "mean_gap": float(np.abs(fake.mean(axis=0) - real.mean(axis=0)).mean()),
        "std_ratio": float(fake.std(axis=0).mean() / spread) if spread > 0 else None,
        "nearest_real": _nearest(fake[:NN_SAMPLES], reference),
        "nearest_real_floor": _nearest(held[:NN_SAMPLES], reference) if len(held) else None,
    }
    return result


def judge_problem(data: Dataset, held: np.ndarray) -> str:
    """Why no judge can be trained on ``data``, or ``""``."""
    if data.kind != "image":
        return "the judge classifier reads images, not points"
    if data.labels is None:
        return "the data has no class labels (a labelled .npz, or a folder with class sub-folders)"
    counts = np.bincount(data.labels, minlength=data.n_classes)
    if len(counts) < 2 or counts.min() < 2 or len(held) < 4:
        return "the judge needs at least two classes with two samples each and four held-out samples"
    return ""


def _check_model(model: Any, data: Dataset) -> None:
    c = model.config
    if math.prod(c.data_shape) != data.n_features or c.data_kind != data.kind:
        raise DataError(f"{data.name}: the model draws {c.data_kind} of shape {tuple(c.data_shape)}, "
                        f"the data holds {data.kind} of shape {data.sample_shape}")
    k = getattr(c, "n_classes", 0)
    if k and data.labels is not None and k != data.n_classes:
        raise DataError(f"{data.name}: the model has {k} classes, the data {data.n_classes}")


def evaluate_data(model: Any, data: Dataset, n: int | None = None, seed: int = 0, verbose: bool = True) -> dict:
    """Quality metrics of ``model``'s samples against ``data``, the data it was trained on (see the module).

    ``n`` samples (default 10,000 for images, 2,500 for points) are drawn from latents seeded by
    ``seed``. Raises :class:`DataError` when the model's samples do not have the data's shape.
    """
    _check_model(model, data)
    n = DEFAULT_N.get(data.kind, 2_500) if n is None else int(n)
    if n < 2:
        raise ValueError(f"evaluation needs at least 2 samples, got n={n}")
    kept, held = held_out_split(len(data), data.labels, seed=0)
    result: dict[str, Any] = {"dataset": data.name, "n_data": len(data), "n_held_out": len(held)}
    problem = judge_problem(data, held)
    if problem:
        result["needs_labels"] = list(NEEDS_LABELS)
        result["note"] = f"no classifier metrics: {problem}"
    else:
        result.update(_judged(model, data, kept, held, n, seed, verbose))
    fake = _as_values(sample_model(model, min(n, NN_SAMPLES * 4), seed), data.kind)
    result.update(sample_statistics(fake, _as_values(data.x[kept], data.kind), _as_values(data.x[held], data.kind)))
    if hasattr(model, "elbo") and len(held):
        result.update(model.elbo(data.x[held], seed))
    return result


def _judge(model: Any, data: Dataset, kept: np.ndarray, verbose: bool = True) -> Classifier:
    """The judge trained on the rows ``kept`` of ``data``, cached by the data's digest."""
    path = cache_dir("own-data") / f"classifier-{data.fingerprint()[:16]}.npz"
    return load_or_train_classifier(data.name, data.x[kept], data.labels[kept], model.backend, cache=path,
                                    verbose=verbose)


def _judged(model: Any, data: Dataset, kept: np.ndarray, held: np.ndarray, n: int, seed: int, verbose: bool) -> dict:
    """The judge's metrics of ``n`` samples against the held-out rows."""
    clf = _judge(model, data, kept, verbose)
    conditional = getattr(model.config, "n_classes", 0) > 0
    result = judge_samples(clf, model, n, data.x[held], seed, data.labels[held] if conditional else None)
    result["classifier_test_accuracy"] = clf.accuracy(data.x[held], data.labels[held])
    return result


def check_built_in(model: Any, name: str) -> None:
    """Refuse the built-in dataset ``name`` when its samples do not have the model's shape."""
    shape = tuple(model.config.data_shape)
    if math.prod(shape) != math.prod(BUILT_IN_SHAPES[name]):
        raise DataError(f"{name}: holds samples of shape {BUILT_IN_SHAPES[name]}, the model draws {shape}")


def evaluate(
    model: Any,
    data: Any = None,
    n: int | None = None,
    seed: int = 0,
    labels: np.ndarray | None = None,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """Quality metrics of ``model``'s samples, as a JSON-able dict.

    ``data``: the name of a built-in dataset (``digits``, ``mnist``, ``fashion-mnist``, ``ring``,
    ``grid``; see :func:`tinygan.evaluation.evaluate.evaluate_model`), a ``.npy``/``.npz`` path or a
    folder of PNG files, a :class:`~tinygan.data.Dataset`, or an array of samples (``(N, *data_shape)``
    or ``(N, data_dim)``) with optional class ``labels``. ``None``: the dataset the model was trained
    on, when it is a built-in one. A user's data is measured by :func:`evaluate_data`.
    """
    if data is None or (isinstance(data, str) and data.lower() in BUILT_IN_SHAPES):
        if data is not None:
            check_built_in(model, data.lower())
        result = evaluate_model(model, n=n, data_dir=data_dir, seed=seed, dataset=data)
        if result is None:
            name = data or getattr(model, "dataset_name", None)
            raise DataError(f"no built-in metrics for dataset {name!r}: pass the data it was trained on")
        return result
    if isinstance(data, np.ndarray):
        data = _array_dataset(model, data, labels)
    elif not isinstance(data, Dataset):
        data = load_dataset(data, data_dir=data_dir)
    return evaluate_data(model, data, n=n, seed=seed)


def _array_dataset(model: Any, x: np.ndarray, labels: np.ndarray | None) -> Dataset:
    c = model.config
    flat = check_samples(x, "data", tuple(c.data_shape), c.data_kind)
    x = flat.reshape(len(flat), *c.data_shape)
    names = None
    if labels is not None:
        k = getattr(c, "n_classes", 0) or None
        labels = check_labels(labels, len(x), k, "labels")
        names = tuple(getattr(c, "class_names", None) or default_names(k or int(labels.max()) + 1))
    value_range = (0.0, 255.0) if x.dtype == np.uint8 else (0.0, 1.0)
    return Dataset("data", x, labels, c.data_kind, value_range, class_names=names)


class DataFDTracker(FDTracker):
    """:class:`~tinygan.evaluation.evaluate.FDTracker` against the held-out part of a user's labelled images."""

    def __init__(self, model: Any, data: Dataset, n: int = 2_000) -> None:
        kept, held = held_out_split(len(data), data.labels)
        self.clf = _judge(model, data, kept)
        self.test_features = self.clf.features(data.x[held])
        self.n = n


def fd_tracker(model: Any, data: Dataset, data_dir: str | None = None) -> FDTracker | None:
    """What measures the FD of ``model``'s samples during training on ``data``, or ``None`` where nothing can."""
    if FDTracker.supports(model):
        return FDTracker(model, data_dir)
    if data.name in (*MIXTURES, *LABELLED_IMAGES) or model.config.data_kind != "image":
        return None
    if judge_problem(data, held_out_split(len(data), data.labels)[1]):
        return None
    return DataFDTracker(model, data)
