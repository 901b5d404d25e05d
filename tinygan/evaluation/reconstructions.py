"""Pictures of what a VAE does to given images: originals above their reconstructions, and the
denoising use -- images corrupted first, then reconstructed.

A model that reconstructs has ``reconstruct(x) -> (N, *data_shape)`` (:meth:`tinygan.models.vae.VAE.reconstruct`).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ..io.images import image_grid, scatter_png, write_png

COLUMNS = 10


def as_unit_floats(x: np.ndarray) -> np.ndarray:
    """uint8 images scaled to [0, 1] float32; floats converted as they are."""
    x = np.asarray(x)
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


def corrupt(x: np.ndarray, p: float, seed: int = 0) -> np.ndarray:
    """Salt-and-pepper noise: each value of images ``x`` (floats in [0, 1]) is replaced, with probability
    ``p``, by 0 or 1 with equal odds. Returns a new float32 array; ``p = 0`` returns a copy."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"noise probability must be in [0, 1], got {p}")
    rng = np.random.default_rng(seed)
    x = as_unit_floats(x).copy()
    hit = rng.random(x.shape) < p
    x[hit] = (rng.random(x.shape) < 0.5)[hit]
    return x


def _square(images: np.ndarray, data_shape: tuple[int, ...]) -> np.ndarray:
    """Images as ``(N, H, W)``: 2-D samples as they are, flat ones as the square they fill."""
    if len(data_shape) == 2:
        return images.reshape(-1, *data_shape)
    side = math.isqrt(math.prod(data_shape))
    return images.reshape(-1, side, side)


def comparison_grid(rows: list[np.ndarray], data_shape: tuple[int, ...], ncols: int = COLUMNS) -> np.ndarray:
    """One grid from image sets of equal length: for each run of ``ncols`` images, one grid row per set.

    ``[originals, reconstructions]`` puts each original directly above its reconstruction.
    """
    squares = [_square(as_unit_floats(r), data_shape) for r in rows]
    n = len(squares[0])
    ncols = min(ncols, n)
    tiles = []
    for start in range(0, n, ncols):
        for images in squares:
            chunk = images[start : start + ncols]
            blank = np.zeros((ncols - len(chunk), *chunk.shape[1:]), np.float32)  # a short last row
            tiles.append(np.concatenate([chunk, blank]))
    return image_grid(np.concatenate(tiles), ncols)


def write_reconstructions(
    path: str | os.PathLike, model: Any, x: np.ndarray, noise: float = 0.0, seed: int = 0
) -> np.ndarray:
    """Write originals ``x`` above their reconstructions (for images; a point plot for points) to ``path``.

    With ``noise`` > 0 the model reconstructs :func:`corrupt` copies, shown between the clean
    originals and the reconstructions. Returns the reconstructions.
    """
    config = model.config
    if config.data_kind != "image":
        recon = model.reconstruct(x)
        scatter_png(path, recon[:, :2], np.asarray(x)[:, :2])
        return recon
    inputs = corrupt(x, noise, seed) if noise else as_unit_floats(x)
    recon = model.reconstruct(inputs)
    rows = [x, inputs, recon] if noise else [x, recon]
    write_png(path, comparison_grid(rows, config.data_shape))
    return recon
