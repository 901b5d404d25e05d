"""Pictures of what a generator learned: a conditional model's class grid, and walks between latents.

* **Class grid**: one row per class, the same latents down each column, so that a reader sees the
  style a latent holds (thickness, slant, brightness) kept while the class changes.
* **Interpolation**: each row walks from one latent to another along the great circle through them
  (:func:`tinygan.models.model.slerp`), which keeps the norms Gaussian latents have; a straight line would
  pass through the low-norm middle that a generator never saw. Every tinygan model draws its
  latents from N(0, I), the GANs and the VAE alike.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ..io.images import image_grid, scatter_png, write_png
from ..models.model import seeded_latents, slerp

GRID_CLASSES = 100  # rows of a class grid at most: a picture, not a catalogue


def conditional(model: Any) -> bool:
    """Whether ``model`` generates a class it is asked for."""
    return bool(getattr(model.config, "n_classes", 0))


def class_grid(model: Any, z: np.ndarray) -> np.ndarray:
    """Samples of each class (rows, the first :data:`GRID_CLASSES`) from the same latents ``z`` (columns).

    Returns ``(rows · len(z), *data_shape)``, row by row.
    """
    rows = min(model.config.n_classes, GRID_CLASSES)
    labels = np.repeat(np.arange(rows), len(z))
    return model.sample(len(labels), z=np.tile(z, (rows, 1)), labels=labels)


def interpolation(model: Any, rows: int, steps: int, seed: int = 0, classes: list[int] | None = None) -> np.ndarray:
    """``rows`` walks of ``steps`` samples each between pairs of latents seeded by ``seed``.

    A conditional model's row ``i`` shows class ``classes[i mod len(classes)]`` (every class in
    turn by default). Returns ``(rows · steps, *data_shape)``, row by row.
    """
    c = model.config
    ends = seeded_latents(2 * rows, c.latent_dim, seed)
    path = slerp(ends[:rows], ends[rows:], steps).reshape(rows * steps, c.latent_dim)
    if not conditional(model):
        return model.sample(len(path), z=path)
    classes = list(range(c.n_classes)) if classes is None else classes
    labels = np.repeat([classes[i % len(classes)] for i in range(rows)], steps)
    return model.sample(len(path), z=path, labels=labels)


def write_rows(path: str | os.PathLike, config: Any, samples: np.ndarray, columns: int) -> None:
    """Images in rows of ``columns`` (or, for 2-D points, all of them in one plot) as a PNG."""
    if config.data_kind != "image":
        scatter_png(path, samples.reshape(len(samples), -1)[:, :2])
        return
    shape = config.data_shape
    side = shape if len(shape) == 2 else (math.isqrt(config.data_dim),) * 2
    write_png(path, image_grid(samples.reshape(-1, *side), columns))
