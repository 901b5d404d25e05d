"""The arguments a model's methods take from a user, checked as the command line checks its options.

NumPy's integer and float scalars (``np.int64(10)``, what indexing an array gives) are taken wherever
Python's are; booleans are not numbers here. Each failure is a one-line ``ValueError`` naming the
argument and what was expected.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def plain(value: Any) -> Any:
    """``value`` with NumPy scalars made Python's (``np.int64(10)`` → ``10``), in lists and tuples too."""
    if isinstance(value, (np.integer, np.floating, np.bool_, np.str_)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


def is_count(value: Any) -> bool:
    """Whether ``value`` is an integer (Python's or NumPy's), not a boolean."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def count(value: Any, name: str, minimum: int = 0) -> int:
    """``value`` as a Python int, or ``ValueError`` unless it is an integer ≥ ``minimum``."""
    if not is_count(value) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def real(value: Any, name: str) -> float:
    """``value`` as a Python float, or ``ValueError`` unless it is a finite real number."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not ok or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def latents(z: Any, n: int, latent_dim: int) -> np.ndarray:
    """Latent vectors ``z`` for ``n`` samples, checked: a finite numeric ``(n, latent_dim)`` array (on the host,
    or already on the device)."""
    if not (hasattr(z, "shape") and hasattr(z, "dtype")):
        z = np.asarray(z)
    if z.dtype.kind not in "iuf" or z.shape != (n, latent_dim):
        raise ValueError(f"z: expected {n} latent vectors, a numeric array of shape ({n}, {latent_dim}), "
                         f"got {z.dtype} {z.shape}")
    if z.dtype.kind == "f" and not np.isfinite(z).all():
        raise ValueError("z: contains NaN or infinite values")
    return z


def shape(value: Any) -> tuple:
    """A sample shape given as a tuple, list or 1-D array, as a tuple of Python values (checked by the config);
    ``ValueError`` for anything else."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if not isinstance(value, (tuple, list)):
        raise ValueError(f"data_shape: expected a tuple of positive sizes such as (28, 28), got {value!r}")
    return tuple(plain(list(value)))
