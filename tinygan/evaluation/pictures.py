"""Pictures of what a model learned, one home for all of them: sample grids, a conditional model's
class grid, walks between latents, and a VAE's reconstructions.

* **Class grid**: one row per class, the same latents down each column, so that a reader sees the
  style a latent holds (thickness, slant, brightness) kept while the class changes.
* **Interpolation**: each row walks from one latent to another along the great circle through them
  (:func:`tinygan.models.latents.slerp`), which keeps the norms Gaussian latents have.
* **Reconstructions**: originals above what a VAE makes of them, optionally corrupted first (denoising).

2-D points are drawn as a point plot (:mod:`tinygan.evaluation.scatter`) wherever images would be.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ..backend import unit_floats
from ..data import Dataset
from ..io.errors import UsageError
from ..io.png import write_png
from ..models.latents import seeded_latents, slerp
from .scatter import scatter_png

# Grey used between grid tiles: dark enough not to distract from white-on-black digits,
# light enough to show where one sample ends and the next begins.
GRID_PAD_VALUE = 48
GRID_CLASSES = 100  # rows of a class grid at most: a picture, not a catalogue
CLASS_GRID_COLUMNS = 10  # latents across a class grid
COLUMNS = 10  # images across a reconstruction grid
GRID_LIMIT = 10_000  # images in one .png grid (a 100 x 100 grid), or originals of one reconstruction grid


def _to_uint8(images: np.ndarray) -> np.ndarray:
    """uint8 passes through; floats are read as [0, 1] intensities, clipped, NaN -> 0."""
    if images.dtype == np.uint8:
        return images
    values = np.nan_to_num(images.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def image_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile (N, H, W) greyscale or (N, H, W, 3) colour images (floats in [0, 1] or uint8) into one uint8 image.

    The grid is near-square by default; ``pad`` pixels of grey separate and surround tiles. It is
    ``(H', W')`` for greyscale tiles, ``(H', W', 3)`` for colour ones.
    """
    arr = np.asarray(images)
    if arr.ndim not in (3, 4) or arr.shape[0] == 0 or (arr.ndim == 4 and arr.shape[3] != 3):
        raise ValueError(f"image_grid expects a non-empty (N, H, W) or (N, H, W, 3) array, got {arr.shape}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    n, h, w = arr.shape[:3]
    ncols = ncols or math.ceil(math.sqrt(n))
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    tiles = _to_uint8(arr)
    grid = np.full(
        (nrows * h + (nrows + 1) * pad, ncols * w + (ncols + 1) * pad, *arr.shape[3:]),
        GRID_PAD_VALUE,
        dtype=np.uint8,
    )
    for i in range(n):
        r, c = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top : top + h, left : left + w] = tiles[i]
    return grid


def as_images(samples: np.ndarray, data_shape: tuple[int, ...]) -> np.ndarray:
    """Samples as ``(N, H, W)`` or ``(N, H, W, 3)`` images.

    2-D samples as they are, ``(H, W, 3)`` colour ones too, ``(H, W, 1)`` as greyscale ``(H, W)``,
    and flat ones as the square they fill.
    """
    if len(data_shape) == 2 or (len(data_shape) == 3 and data_shape[2] == 3):
        return samples.reshape(-1, *data_shape)
    if len(data_shape) == 3 and data_shape[2] == 1:
        return samples.reshape(-1, *data_shape[:2])
    side = math.isqrt(math.prod(data_shape))
    return samples.reshape(-1, side, side)


def draw_samples(path: str | os.PathLike, config: Any, fake: np.ndarray, real: Dataset | None = None) -> None:
    """A grid of samples ``fake`` of a model of ``config``, or for 2-D points a plot of them over real points."""
    if config.data_kind == "image":
        write_png(path, image_grid(as_images(fake, config.data_shape)))
        return
    reference = None if real is None else real.x[: fake.shape[0]]
    scatter_png(path, fake[:, :2], None if reference is None else reference[:, :2])


def write_samples(path: str | os.PathLike, model: Any, z: np.ndarray, real: Dataset | None = None) -> None:
    """:func:`draw_samples` of ``model``'s samples from latents ``z``.

    A conditional model's images form its class grid: a row per class, the first
    :data:`CLASS_GRID_COLUMNS` latents of ``z`` down the columns.
    """
    if model.config.conditional and model.config.data_kind == "image":
        columns = min(len(z), CLASS_GRID_COLUMNS)
        write_rows(path, model.config, class_grid(model, z[:columns]), columns)
        return
    draw_samples(path, model.config, model.sample(z.shape[0], z=z), real)


def write_rows(path: str | os.PathLike, config: Any, samples: np.ndarray, columns: int) -> None:
    """Images in rows of ``columns`` (or, for 2-D points, all of them in one plot) as a PNG."""
    if config.data_kind != "image":
        scatter_png(path, samples.reshape(len(samples), -1)[:, :2])
        return
    write_png(path, image_grid(as_images(samples, config.data_shape), columns))


# -- what a generator learned --------------------------------------------------------------------


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
    if not c.conditional:
        return model.sample(len(path), z=path)
    classes = list(range(c.n_classes)) if classes is None else classes
    labels = np.repeat([classes[i % len(classes)] for i in range(rows)], steps)
    return model.sample(len(path), z=path, labels=labels)


# -- what a VAE does to given images -------------------------------------------------------------


def corrupt(x: np.ndarray, p: float, seed: int = 0) -> np.ndarray:
    """Salt-and-pepper noise: each value of images ``x`` (floats in [0, 1]) is replaced, with probability
    ``p``, by 0 or 1 with equal odds. Returns a new float32 array; ``p = 0`` returns a copy."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"noise probability must be in [0, 1], got {p}")
    rng = np.random.default_rng(seed)
    x = unit_floats(np, np.asarray(x), np.float32).copy()
    hit = rng.random(x.shape) < p
    x[hit] = (rng.random(x.shape) < 0.5)[hit]
    return x


def comparison_grid(rows: list[np.ndarray], data_shape: tuple[int, ...], ncols: int = COLUMNS) -> np.ndarray:
    """One grid from image sets of equal length: for each run of ``ncols`` images, one grid row per set.

    ``[originals, reconstructions]`` puts each original directly above its reconstruction.
    """
    squares = [as_images(unit_floats(np, np.asarray(r), np.float32), data_shape) for r in rows]
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
    originals and the reconstructions. Returns the reconstructions. More than :data:`GRID_LIMIT` images
    are refused (:class:`~tinygan.io.errors.UsageError`) before any is reconstructed.
    """
    config = model.config
    if config.data_kind == "image" and len(x) > GRID_LIMIT:
        raise UsageError(f"{len(x)} images to reconstruct: a .png shows at most {GRID_LIMIT} originals with their "
                         "reconstructions; write a .npy file for more")
    if config.data_kind != "image":
        recon = model.reconstruct(x)
        scatter_png(path, recon[:, :2], np.asarray(x)[:, :2])
        return recon
    inputs = corrupt(x, noise, seed) if noise else unit_floats(np, np.asarray(x), np.float32)
    recon = model.reconstruct(inputs)
    rows = [x, inputs, recon] if noise else [x, recon]
    write_png(path, comparison_grid(rows, config.data_shape))
    return recon
