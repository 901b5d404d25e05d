"""A user's own samples from a .npy file, or an .npz file that holds exactly one array.

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
from .validate import check_samples

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
    if x.dtype.kind == "f":  # converted first, so the checks see the float32 values that are kept
        x = x.astype(np.float32)
    x = check_samples(x, str(path))
    value_range = (0.0, 255.0) if x.dtype == np.uint8 else (0.0, 1.0)
    kind = "image"
    if x.ndim == 2:
        side = _square_side(x.shape[1])
        if side is None:
            kind = "points"
        else:
            x = x.reshape(len(x), side, side)
    return np.ascontiguousarray(x), kind, value_range
