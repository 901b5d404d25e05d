"""Datasets for tinygan: procedural digits, MNIST / Fashion-MNIST (IDX files), 2D Gaussian
mixtures, user-supplied .npy/.npz arrays and folders of PNG files, all behind one call,
:func:`load_dataset`.

Image data stays uint8 (N, H, W); training code converts mini-batches to floats on the fly
so the full dataset is never materialised as floats. Each source lives in its own module
(``digits``, ``mixtures``, ``idx`` and ``sources``, ``arrays``, ``folder``); this one turns what they
produce into a :class:`Dataset`. ``validate`` holds the one check of sample arrays, which
a user's file and the arrays given to ``fit`` both pass.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.errors import DataError
from ..io.memory import check_fits
from .arrays import load_samples
from .digits import make_digits
from .folder import load_folder
from .idx import idx_bytes, parse_idx, read_idx, write_idx
from .mixtures import mixture_modes, sample_mixture
from .sources import IDX_SOURCES, SYSTEM_DATA_ROOTS, cache_dir, download_file, find_idx_files

__all__ = [
    "CLASS_NAMES",
    "DATASETS",
    "IDX_SOURCES",
    "SPLITS",
    "SYSTEM_DATA_ROOTS",
    "DataError",
    "Dataset",
    "cache_dir",
    "download_file",
    "generated_bytes",
    "idx_bytes",
    "load_dataset",
    "make_digits",
    "mixture_modes",
    "parse_idx",
    "read_idx",
    "write_idx",
]

DATASETS = ("digits", "mnist", "fashion-mnist", "ring", "grid")
N_CLASSES = 10  # of the IDX datasets (MNIST, Fashion-MNIST)
DIGIT_NAMES = tuple(str(d) for d in range(10))
# Fashion-MNIST's classes, in the order of its labels (Xiao et al., 2017).
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot")
CLASS_NAMES = {"digits": DIGIT_NAMES, "mnist": DIGIT_NAMES, "fashion-mnist": FASHION_NAMES}
SPLITS = ("train", "test")


@dataclass
class Dataset:
    """An in-memory dataset.

    ``x`` is uint8 (N, H, W) for byte images, float32 for everything else. ``value_range`` is
    the range of what the values mean: (0, 255) for uint8 images, (0, 1) for float images,
    the data range for point clouds. For the mixtures, ``modes`` holds the mode centres
    (float32, (K, 2)) and ``mode_std`` their standard deviation; both are None otherwise.
    ``labels`` (int64, (N,)) are classes ``0..K−1`` named by ``class_names`` (K), or both None.
    """

    name: str
    x: np.ndarray
    labels: np.ndarray | None
    kind: str
    value_range: tuple[float, float]
    modes: np.ndarray | None = None
    mode_std: float | None = None
    class_names: tuple[str, ...] | None = None

    @property
    def n_classes(self) -> int:
        """Number of classes its labels name (0 for unlabelled data)."""
        return 0 if self.class_names is None else len(self.class_names)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. (28, 28) or (2,)."""
        return tuple(self.x.shape[1:])

    @property
    def n_features(self) -> int:
        """Number of values in one sample."""
        return int(math.prod(self.sample_shape))

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the samples, their shape and dtype: a run records it to notice changed data."""
        digest = hashlib.sha256(f"{self.x.shape} {self.x.dtype.str}".encode())
        digest.update(memoryview(np.ascontiguousarray(self.x)).cast("B"))
        return digest.hexdigest()

    def labels_fingerprint(self) -> str | None:
        """SHA-256 (hex) of the labels as int64 (``None`` without labels): what a conditional run also trains on."""
        if self.labels is None:
            return None
        return hashlib.sha256(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes()).hexdigest()


_DEFAULT_N = {"train": 60_000, "test": 10_000}
# Memory per generated sample: a uint8 digit and its int64 label; a float64 point and its label.
_GENERATED_BYTES = {"digits": 28 * 28 + 8, "ring": 3 * 8, "grid": 3 * 8}
_DEFAULT_N_MIXTURE = {"train": 100_000, "test": 10_000}
# Distinct seed streams per (dataset, split), so e.g. the digits test split never repeats
# training images for the same seed.
_STREAM = {"digits": 1, "ring": 2, "grid": 3}


def _stream_seed(name: str, split: str, seed: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([_STREAM[name], SPLITS.index(split), seed])


def generated_bytes(name: str, n: int) -> int | None:
    """Memory that ``n`` samples of the generated dataset ``name`` take; ``None`` for data read from files."""
    per_sample = _GENERATED_BYTES.get(str(name).lower())
    return None if per_sample is None else per_sample * n


def _take(ds: Dataset, n: int | None) -> Dataset:
    """Keep the first n samples (n must not exceed what the dataset has)."""
    if n is None:
        return ds
    if n > len(ds):
        raise DataError(f"{ds.name}: n={n} requested but the dataset has only {len(ds)} samples")
    ds.x = ds.x[:n]
    ds.labels = None if ds.labels is None else ds.labels[:n]
    return ds


def _mixture_dataset(name: str, n: int, rng: np.random.Generator) -> Dataset:
    modes, std = mixture_modes(name)
    x, labels = sample_mixture(name, n, rng)
    value_range = (float(x.min()), float(x.max()))
    names = tuple(str(i) for i in range(len(modes)))  # a mode's class is its number
    return Dataset(name, x, labels, "points", value_range, modes, std, names)  # float64: metrics measure in it


def _idx_dataset(name: str, data_dir: str | os.PathLike | None, split: str, download: bool) -> Dataset:
    images_path, labels_path = find_idx_files(name, split, data_dir, download)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8 or 0 in images.shape:
        raise DataError(
            f"{images_path}: expected uint8 images of shape (N, H, W) with no empty dimension, "
            f"got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{labels_path}: expected {len(images)} labels to match {images_path.name}, got shape {labels.shape}"
        )
    _check_labels(labels, labels_path)
    return Dataset(name, images, labels.astype(np.int64), "image", (0.0, 255.0), class_names=CLASS_NAMES[name])


def _check_labels(labels: np.ndarray, path: Path) -> None:
    """MNIST and Fashion-MNIST labels are classes 0..9; anything else would mislead the judge classifier."""
    if labels.dtype.kind not in "iu":
        raise DataError(f"{path}: expected integer class labels 0..{N_CLASSES - 1}, got {labels.dtype} values")
    outside = np.flatnonzero((labels < 0) | (labels >= N_CLASSES))
    if outside.size:
        i = int(outside[0])
        raise DataError(
            f"{path}: label {int(labels[i])} at index {i} is outside 0..{N_CLASSES - 1} "
            f"({outside.size} labels out of range)"
        )


def _checked_arguments(split: str, n: object, seed: object) -> tuple[int | None, int]:
    """``load_dataset``'s split, ``n`` and ``seed`` checked (NumPy integers taken for Python's)."""
    if split not in SPLITS:
        raise DataError(f"split must be 'train' or 'test', got {split!r}")
    if n is not None and (isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n <= 0):
        raise DataError(f"n must be a positive integer, got {n!r}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be an integer >= 0, got {seed!r}")
    return None if n is None else int(n), int(seed)


def load_dataset(
    name: str | os.PathLike = "digits",
    data_dir: str | os.PathLike | None = None,
    split: str = "train",
    n: int | None = None,
    seed: int = 0,
    download: bool = True,
) -> Dataset:
    """Load a dataset by name ("digits", "mnist", "fashion-mnist", "ring", "grid") or
    from a .npy/.npz path (an .npz holding ``x``, ``y`` and optionally ``names`` is labelled), or
    from a folder of PNG files (labelled by its sub-folders, if it has any; see :mod:`tinygan.data.folder`).

    ``n`` limits the number of samples (generated sets produce exactly n; file-backed sets
    keep the first n). ``seed`` drives the generated sets. ``download`` allows fetching
    MNIST / Fashion-MNIST into the user cache when no local copy is found.
    """
    n, seed = _checked_arguments(split, n, seed)
    name = os.fspath(name)
    key = name.lower()
    if key in _GENERATED_BYTES:
        check_fits(generated_bytes(key, n or 0), f"{key}: n={n}", DataError)
    if key == "digits":
        count = n or _DEFAULT_N[split]
        images, labels = make_digits(count, seed=_stream_seed(key, split, seed))
        return Dataset("digits", images, labels, "image", (0.0, 255.0), class_names=DIGIT_NAMES)
    if key in ("ring", "grid"):
        count = n or _DEFAULT_N_MIXTURE[split]
        return _mixture_dataset(key, count, np.random.default_rng(_stream_seed(key, split, seed)))
    if key in IDX_SOURCES:
        return _take(_idx_dataset(key, data_dir, split, download), n)
    path = Path(name).expanduser()
    try:
        exists = path.exists()
    except OSError as e:  # a name too long, say
        raise DataError(f"{path}: cannot read it ({e.strerror or e})") from None
    if exists and path.is_dir():
        x, labels, names = load_folder(path)
        classes = names and tuple(names)
        return _take(Dataset(path.resolve().name, x, labels, "image", (0.0, 255.0), class_names=classes), n)
    if path.suffix.lower() in (".npy", ".npz") or exists:
        if path.suffix.lower() not in (".npy", ".npz"):
            raise DataError(f"{path}: unsupported file type; expected a .npy or .npz file")
        x, kind, value_range, labels, names = load_samples(path)
        return _take(Dataset(path.stem, x, labels, kind, value_range, class_names=names and tuple(names)), n)
    raise DataError(
        f"unknown dataset {name!r}: expected one of {', '.join(DATASETS)} "
        "or a path to a .npy/.npz file or a folder of PNG files"
    )
