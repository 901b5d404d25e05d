"""A user's own samples from a .npy or .npz file (one array; an .npz holds exactly one).

The file is read without unpickling anything. Its array must be (N, D) or (N, H, W) of
uint8 (0..255) or floats in [0, 1]; a 2-D array whose rows hold a square number of at
least 16 values is taken for flattened square images, any other 2-D array for points.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..arrayfile import Wording, read_array
from ..errors import DataError

_USER_WORDING = Wording(
    missing="{path}: file not found (expected a .npy or .npz array file)",
    unreadable="{path}: cannot read file ({detail})",
    truncated="{path}: cannot load: not a .npy or .npz file (unrecognised header)",
    wrong_format="{path}: cannot load: not a .npy or .npz file (unrecognised header)",
    pickled="{path}: contains pickled Python objects; save a plain numeric array instead",
    malformed="{path}: cannot load as .npy/.npz ({detail})",
    corrupt="{path}: cannot load as .npy/.npz ({detail})",
    not_array="{path}: cannot load array {detail} (not a .npy member)",
    count="{path}: .npz must hold exactly one array, found {detail}",
)


def _square_side(d: int) -> int | None:
    """Side of a square image with d pixels (d >= 16), else None."""
    side = math.isqrt(d)
    return side if d >= 16 and side * side == d else None


def load_samples(path: Path) -> tuple[np.ndarray, str, tuple[float, float]]:
    """The samples of a user's file, with their kind ("image" or "points") and value range."""
    x = read_array(path, DataError, _USER_WORDING)
    if x.dtype == object:
        raise DataError(f"{path}: contains Python objects; save a plain numeric array instead")
    if x.ndim not in (2, 3):
        raise DataError(f"{path}: expected shape (N, D) or (N, H, W), got {x.shape}")
    if x.shape[0] == 0 or 0 in x.shape:
        raise DataError(f"{path}: array is empty (shape {x.shape})")
    if x.dtype == np.uint8:
        value_range = (0.0, 255.0)
    elif x.dtype.kind == "f":
        x = x.astype(np.float32)
        if not np.all(np.isfinite(x)):
            raise DataError(f"{path}: contains NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise DataError(
                f"{path}: float values must lie in [0, 1], found range [{lo:g}, {hi:g}]"
            )
        value_range = (0.0, 1.0)
    else:
        raise DataError(
            f"{path}: unsupported dtype {x.dtype}; expected uint8 (0..255) or float in [0, 1]"
        )
    kind = "image"
    if x.ndim == 2:
        side = _square_side(x.shape[1])
        if side is None:
            kind = "points"
        else:
            x = x.reshape(len(x), side, side)
    return np.ascontiguousarray(x), kind, value_range
