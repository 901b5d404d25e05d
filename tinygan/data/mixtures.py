"""The 2-D Gaussian mixtures of the PacGAN mode-collapse benchmarks: a ring of 8, a grid of 25.

Every mode has the same small standard deviation and the same chance, so a generator that
covers the data puts points near every mode in about equal numbers.
"""

from __future__ import annotations

import numpy as np

from ..io.errors import DataError


def mixture_modes(name: str) -> tuple[np.ndarray, float]:
    """Mode centres and std of the PacGAN synthetic mixtures ("ring" or "grid")."""
    if name == "ring":
        angles = 2 * np.pi * np.arange(8) / 8
        return np.stack([np.cos(angles), np.sin(angles)], axis=1), 0.01
    if name == "grid":
        ticks = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
        gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
        return np.stack([gx.ravel(), gy.ravel()], axis=1), 0.05
    raise DataError(f"unknown mixture {name!r}: expected 'ring' or 'grid'")


def sample_mixture(name: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points of mixture ``name``: float32 ``(n, 2)`` and the int64 label of each point's mode."""
    modes, std = mixture_modes(name)
    labels = rng.integers(0, len(modes), size=n).astype(np.int64)
    x = (modes[labels] + std * rng.standard_normal((n, 2))).astype(np.float32)
    return x, labels
