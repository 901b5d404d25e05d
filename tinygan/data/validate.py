"""The one check of sample arrays, and of class labels, for arrays passed to ``fit`` and for a user's data files.

Samples are a NumPy array of N > 0 samples with no empty dimension, of uint8 (0..255) or
floats, all finite; float intensities lie in [0, 1], while points may take any value. Each
failure is a one-line :class:`DataError` that names the array (a file's path, or
"training data") and says what was expected.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..io.errors import DataError


def check_samples(x: Any, name: str, data_shape: tuple[int, ...] | None = None, kind: str | None = None) -> np.ndarray:
    """Validate the samples ``x`` and return them, as ``(N, data_dim)`` when ``data_shape`` is given.

    ``data_shape``: one sample's shape; ``x`` may then be ``(N, *data_shape)`` or ``(N, data_dim)``
    (the result is a view where possible). Without it, ``x`` may be ``(N, D)``, ``(N, H, W)`` or
    ``(N, H, W, C)`` with C = 1 (greyscale) or 3 (RGB) and is returned as it is. ``kind``: "points"
    lets floats take any finite value; "image", or None when the kind is not known yet, requires
    floats in [0, 1].
    """
    if not isinstance(x, np.ndarray):
        raise DataError(f"{name}: expected a NumPy array, got {type(x).__name__}")
    _check_shape(x, name, data_shape)
    if 0 in x.shape:
        raise DataError(f"{name}: array is empty (shape {x.shape})")
    _check_values(x, name, kind)
    return x if data_shape is None else x.reshape(x.shape[0], math.prod(data_shape))


def _check_shape(x: np.ndarray, name: str, data_shape: tuple[int, ...] | None) -> None:
    if data_shape is None:
        if x.ndim not in (2, 3, 4) or (x.ndim == 4 and x.shape[3] not in (1, 3)):
            raise DataError(f"{name}: expected shape (N, D), (N, H, W) or (N, H, W, C) with C = 1 or 3, got {x.shape}")
        return
    dim = math.prod(data_shape)
    if x.ndim < 2 or x.shape[0] == 0 or math.prod(x.shape[1:]) != dim:
        flat = "" if len(data_shape) == 1 else f" or (N, {dim})"  # (N, 2) or (N, 2) would say nothing
        raise DataError(
            f"{name}: expected shape (N, {', '.join(map(str, data_shape))}){flat} with N > 0, got {x.shape}"
        )


def _check_values(x: np.ndarray, name: str, kind: str | None) -> None:
    unit_floats = kind != "points"  # image intensities; a point's coordinates have no fixed range
    if x.dtype != np.uint8 and x.dtype.kind != "f":
        expected = "uint8 (0..255) or float in [0, 1]" if unit_floats else "uint8 or floating-point values"
        raise DataError(f"{name}: unsupported dtype {x.dtype}; expected {expected}")
    if x.dtype.kind != "f":
        return
    if not np.isfinite(x).all():
        raise DataError(f"{name}: contains NaN or infinite values")
    if unit_floats:
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise DataError(f"{name}: float values must lie in [0, 1], found range [{lo:g}, {hi:g}]")


def check_labels(y: Any, n: int, n_classes: int | None, name: str) -> np.ndarray:
    """Validate class labels ``y`` of ``n`` samples and return them as int64 ``(n,)``.

    Labels are integers (not floats, not booleans) in ``0..n_classes−1``, or any count ``≥ 0`` when
    ``n_classes`` is ``None``. Each failure is a one-line :class:`DataError` naming ``name``.
    """
    if not isinstance(y, np.ndarray):
        raise DataError(f"{name}: expected a NumPy array of integer classes, got {type(y).__name__}")
    if y.shape != (n,):
        raise DataError(f"{name}: expected one label per sample, shape ({n},), got {y.shape}")
    if y.dtype.kind not in "iu":
        raise DataError(f"{name}: expected integer class labels, got {y.dtype} values")
    bad = y < 0 if n_classes is None else (y < 0) | (y >= n_classes)
    where = "negative" if n_classes is None else f"outside 0..{n_classes - 1}"
    outside = np.flatnonzero(bad)
    if outside.size:
        i = int(outside[0])
        raise DataError(f"{name}: label {int(y[i])} at index {i} is {where} ({outside.size} labels out of range)")
    return y.astype(np.int64, copy=False)


def compact_labels(y: np.ndarray, names: list[str] | None, name: str) -> tuple[np.ndarray, list[str], str]:
    """Checked labels ``y`` numbered ``0..K−1`` over the K classes that occur, their names, and a note.

    Without ``names`` each class keeps its label as its name (labels 3, 7, 100 become classes 0, 1, 2
    named "3", "7", "100"); with ``names``, one per label ``0..len(names)−1``, the names of labels that
    do not occur are dropped and the others keep their order. The note (``""`` when nothing changed) is
    one line saying what was renumbered. ``O(N log N)`` in the labels, whatever their values.
    """
    values, compact = np.unique(y, return_inverse=True)
    compact = compact.reshape(-1).astype(np.int64)
    k = len(values)
    if names is None:
        kept = [str(int(v)) for v in values]
        if int(values[-1]) == k - 1:  # 0..K−1, all of them: as they are
            return compact, kept, ""
        return compact, kept, (f"{name}: {k} classes with labels {_few(kept)}; numbered 0..{k - 1} here, "
                               "each named by its label")
    kept = [names[int(v)] for v in values]
    if k == len(names):
        return compact, kept, ""
    unused = [names[i] for i in sorted(set(range(len(names))) - set(values.tolist()))]
    return compact, kept, (f"{name}: labels of {k} of the {len(names)} named classes occur; numbered 0..{k - 1} "
                           f"here, the names of the {len(unused)} without samples dropped ({_few(unused)})")


def _few(items: list[str], shown: int = 5) -> str:
    quoted = ", ".join(repr(s) if not s.isdigit() else s for s in items[:shown])
    return quoted + (f" and {len(items) - shown} more" if len(items) > shown else "")
