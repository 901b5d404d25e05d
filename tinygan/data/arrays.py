"""A user's own samples: a .npy file, an .npz file holding one array, or a labelled .npz.

The file is read without unpickling anything. Its samples must be (N, D), (N, H, W) or
(N, H, W, C) with C = 1 or 3 (RGB), of uint8 (0..255) or floats in [0, 1]; (N, H, W, 1) is
read as greyscale (N, H, W). A 2-D array whose rows hold a square number of at least 16
values is taken for flattened square images, any other 2-D array for points.

A labelled .npz holds the samples as ``x``, their integer classes as ``y`` (N,) and optionally
the classes' names as ``names`` (K,), a string array (``np.savez(f, x=x, y=y, names=["cat",
"dog"])``). The classes are those whose labels occur, numbered 0..K−1 in label order: without
names each is named by its label (labels 3, 7, 100 are classes "3", "7", "100"); names of labels that
do not occur are dropped. Either renumbering is said in one line on stderr.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from ..io.arrayfile import ZIP_MAGIC, Wording, open_archive, read_array
from ..io.errors import DataError
from ..models.classes import names_problem
from .validate import check_labels, check_samples, compact_labels

_USER_WORDING = Wording(
    missing="{path}: file not found (expected a .npy or .npz array file)",
    unreadable="{path}: cannot read file ({detail})",
    truncated="{path}: cannot load: not a .npy or .npz file (unrecognised header)",
    wrong_format="{path}: cannot load: not a .npy or .npz file (unrecognised header)",
    pickled="{path}: contains pickled Python objects; save a plain numeric array instead",
    malformed="{path}: cannot load as .npy/.npz ({detail})",
    corrupt="{path}: cannot load as .npy/.npz ({detail})",
    not_array="{path}: cannot load array {detail} (not a .npy member)",
    count="{path}: .npz must hold exactly one array, or x and y (class labels) and optionally names; found {detail}",
)
LABELLED = ("x", "y", "names")


def _square_side(d: int) -> int | None:
    """Side of a square image with d pixels (d >= 16), else None."""
    side = math.isqrt(d)
    return side if d >= 16 and side * side == d else None


def load_samples(path: Path) -> tuple[np.ndarray, str, tuple[float, float], np.ndarray | None, list[str] | None]:
    """The samples of a user's file, with their kind ("image" or "points"), value range, labels and class names.

    Labels and names are ``None`` for a file without ``y``; names default to the class numbers.
    """
    labelled = _read_labelled(path)
    x = read_array(path, DataError, _USER_WORDING) if labelled is None else labelled["x"]
    x, kind, value_range = _as_samples(x, str(path) if labelled is None else f"{path}: x")
    if labelled is None:
        return x, kind, value_range, None, None
    labels, names = _classes(path, labelled, len(x))
    return x, kind, value_range, labels, names


def _as_samples(x: np.ndarray, name: str) -> tuple[np.ndarray, str, tuple[float, float]]:
    if x.dtype.kind == "f":  # converted first, so the checks see the float32 values that are kept
        x = x.astype(np.float32)
    x = check_samples(x, name)
    value_range = (0.0, 255.0) if x.dtype == np.uint8 else (0.0, 1.0)
    kind = "image"
    if x.ndim == 4 and x.shape[3] == 1:
        x = x[:, :, :, 0]
    if x.ndim == 2:
        side = _square_side(x.shape[1])
        if side is None:
            kind = "points"
        else:
            x = x.reshape(len(x), side, side)
    return np.ascontiguousarray(x), kind, value_range


def _read_labelled(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of an .npz archive that holds ``y``; ``None`` for any other file (read as unlabelled samples)."""
    try:
        with open(path, "rb") as f:
            if f.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
                return None
    except OSError:
        return None  # read_array names the problem
    with open_archive(path, DataError, _USER_WORDING) as archive:
        held = list(archive.members)
        if "y" not in held:
            return None
        if "x" not in held or set(held) - set(LABELLED):
            raise DataError(f"{path}: a labelled .npz holds x (samples), y (class labels) and optionally names; "
                            f"found {', '.join(held)}")
        return archive.read_all()


def _classes(path: Path, arrays: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, list[str]]:
    """The checked labels of ``n`` samples and their classes' names."""
    names = arrays.get("names")
    if names is not None:
        if names.ndim != 1 or names.dtype.kind not in "US":
            raise DataError(f"{path}: names: expected a 1-D array of strings, got {names.dtype} {names.shape}")
        try:
            names = [str(v.decode() if isinstance(v, bytes) else v) for v in names.tolist()]
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: names: name {e.object!r} is not UTF-8 text") from None
        problem = names_problem(names)
        if problem:
            raise DataError(f"{path}: names: {problem}")
    labels = check_labels(arrays["y"], n, None if names is None else len(names), f"{path}: y")
    labels, names, note = compact_labels(labels, names, f"{path}: y")
    if note:
        print(note, file=sys.stderr)
    return labels, names
