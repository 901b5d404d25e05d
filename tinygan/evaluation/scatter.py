"""Point plots of 2-D samples: generated points over real ones, drawn straight into pixels."""

from __future__ import annotations

import math
import os

import numpy as np

from ..io.png import write_png

# Scatter colours (RGB): real data in a muted blue, generated samples in orange on top.
REAL_COLOR = (70, 110, 200)
FAKE_COLOR = (240, 120, 20)
BACKGROUND_COLOR = (255, 255, 255)
AXIS_COLOR = (225, 225, 225)

# Plot extent: (xmin, xmax, ymin, ymax) in data units.
Extent = tuple[float, float, float, float]


def _finite_points(points: np.ndarray | None, name: str) -> np.ndarray:
    """Return the finite rows of an (N, 2) array (diverged generators can emit NaN/inf)."""
    if points is None:
        return np.zeros((0, 2), dtype=np.float64)
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"scatter_png: {name} must have shape (N, 2), got {arr.shape}")
    return arr[np.all(np.isfinite(arr), axis=1)]


def _auto_extent(points: np.ndarray, margin: float = 0.1) -> Extent:
    """Square (equal-aspect) extent around the points with a relative margin."""
    if len(points) == 0:
        return (-1.0, 1.0, -1.0, 1.0)
    lo, hi = points.min(axis=0), points.max(axis=0)
    centre = (lo + hi) / 2
    half = max(float((hi - lo).max()) / 2, 1e-6) * (1 + 2 * margin)
    return (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half)


def _dot_offsets(radius: float) -> np.ndarray:
    """Integer (dy, dx) offsets of a filled disk: the footprint drawn for each point."""
    r = math.ceil(radius)
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    keep = dy**2 + dx**2 <= radius**2 + 1e-9
    return np.stack([dy[keep], dx[keep]], axis=1)


def _draw_points(
    canvas: np.ndarray,
    points: np.ndarray,
    extent: Extent,
    color: tuple[int, int, int],
    radius: float,
) -> None:
    """Stamp a small disk of ``color`` at each point (vectorised, later points on top)."""
    if len(points) == 0:
        return
    size_y, size_x = canvas.shape[:2]
    x0, x1, y0, y1 = extent
    cols = np.round((points[:, 0] - x0) / (x1 - x0) * (size_x - 1)).astype(np.int64)
    # Image rows grow downwards while y grows upwards.
    rows = np.round((y1 - points[:, 1]) / (y1 - y0) * (size_y - 1)).astype(np.int64)
    offsets = _dot_offsets(radius)
    rr = (rows[:, None] + offsets[None, :, 0]).ravel()
    cc = (cols[:, None] + offsets[None, :, 1]).ravel()
    inside = (rr >= 0) & (rr < size_y) & (cc >= 0) & (cc < size_x)
    canvas[rr[inside], cc[inside]] = color


def _draw_axes(canvas: np.ndarray, extent: Extent) -> None:
    """Faint x = 0 and y = 0 lines when they fall inside the plot, for orientation."""
    size_y, size_x = canvas.shape[:2]
    x0, x1, y0, y1 = extent
    if x0 < 0 < x1:
        canvas[:, round(-x0 / (x1 - x0) * (size_x - 1))] = AXIS_COLOR
    if y0 < 0 < y1:
        canvas[round(y1 / (y1 - y0) * (size_y - 1)), :] = AXIS_COLOR


def scatter_png(
    path: str | os.PathLike,
    fake: np.ndarray,
    real: np.ndarray | None = None,
    size: int = 512,
    extent: Extent | None = None,
) -> None:
    """Render 2D points to an RGB PNG: real points in blue, generated (fake) in orange on top.

    ``extent`` is (xmin, xmax, ymin, ymax); by default it is fitted to the real points
    (or the fake ones when no real points are given) with a 10% margin and equal aspect.
    Points outside the extent and non-finite points are not drawn.
    """
    if size < 16:
        raise ValueError(f"scatter_png: size must be >= 16, got {size}")
    fake_pts = _finite_points(fake, "fake")
    real_pts = _finite_points(real, "real")
    if extent is None:
        extent = _auto_extent(real_pts if len(real_pts) else fake_pts)
    x0, x1, y0, y1 = (float(v) for v in extent)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"scatter_png: extent must have xmax > xmin and ymax > ymin: {extent}")
    canvas = np.empty((size, size, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND_COLOR
    _draw_axes(canvas, (x0, x1, y0, y1))
    radius = max(1.0, size / 320)
    _draw_points(canvas, real_pts, (x0, x1, y0, y1), REAL_COLOR, radius)
    _draw_points(canvas, fake_pts, (x0, x1, y0, y1), FAKE_COLOR, radius)
    write_png(path, canvas)
