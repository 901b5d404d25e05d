"""Image output with only numpy and the standard library: PNG files, image grids, 2D scatter plots.

PNG encoding uses zlib + struct directly so the package needs no imaging library.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .files import atomic_write_bytes

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# PNG colour types this module writes: 0 = greyscale, 2 = RGB (both 8 bits per sample).
_COLOR_TYPES = {1: 0, 3: 2}
_CHANNELS = {0: 1, 2: 3}

# Grey used between grid tiles: dark enough not to distract from white-on-black digits,
# light enough to show where one sample ends and the next begins.
GRID_PAD_VALUE = 48

# Scatter colours (RGB): real data in a muted blue, generated samples in orange on top.
REAL_COLOR = (70, 110, 200)
FAKE_COLOR = (240, 120, 20)
BACKGROUND_COLOR = (255, 255, 255)
AXIS_COLOR = (225, 225, 225)

# Plot extent: (xmin, xmax, ymin, ymax) in data units.
Extent = tuple[float, float, float, float]


# --------------------------------------------------------------------------- PNG writing


def _as_png_pixels(pixels: np.ndarray) -> np.ndarray:
    """Validate pixels for PNG output and return a C-contiguous uint8 (H, W, C) array."""
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8:
        raise ValueError(f"PNG pixels must be uint8, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in _COLOR_TYPES:
        raise ValueError(f"PNG pixels must have shape (H, W) or (H, W, 3), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"PNG image must be non-empty, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC over type + data."""
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_bytes(pixels: np.ndarray) -> bytes:
    """Encode uint8 (H, W) greyscale or (H, W, 3) RGB pixels as a PNG file in memory."""
    arr = _as_png_pixels(pixels)
    height, width, channels = arr.shape
    ihdr = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPES[channels], 0, 0, 0)
    # Every scanline starts with a filter-type byte; 0 ("None") keeps the encoder trivial and
    # zlib still compresses the mostly-flat images we produce well.
    rows = np.zeros((height, 1 + width * channels), dtype=np.uint8)
    rows[:, 1:] = arr.reshape(height, width * channels)
    idat = zlib.compress(rows.tobytes(), 6)
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def write_png(path: str | os.PathLike, pixels: np.ndarray) -> None:
    """Write uint8 (H, W) greyscale or (H, W, 3) RGB pixels to a PNG file atomically."""
    atomic_write_bytes(path, png_bytes(pixels))


# --------------------------------------------------------------------------- PNG reading


def _iter_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield (type, payload) for each chunk, checking lengths and CRCs."""
    pos = len(PNG_SIGNATURE)
    while pos < len(data):
        if pos + 8 > len(data):
            raise ValueError("truncated PNG chunk header")
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 8 + length
        if end + 4 > len(data):
            raise ValueError(f"truncated PNG chunk {kind!r}")
        payload = data[pos + 8 : end]
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if crc != zlib.crc32(kind + payload) & 0xFFFFFFFF:
            raise ValueError(f"bad CRC in PNG chunk {kind!r}")
        yield kind, payload
        pos = end + 4


def decode_png(data: bytes) -> np.ndarray:
    """Decode an 8-bit greyscale/RGB, non-interlaced PNG whose scanlines use filter type 0.

    This is deliberately minimal: it reads what this module writes (used for tests).
    """
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file (bad signature)")
    header = None
    idat = []
    for kind, payload in _iter_chunks(data):
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", payload)
        elif kind == b"IDAT":
            idat.append(payload)
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("PNG has no IHDR chunk")
    width, height, depth, color_type, _, _, interlace = header
    if depth != 8 or color_type not in _CHANNELS or interlace != 0:
        raise ValueError(f"unsupported PNG format (depth {depth}, colour type {color_type})")
    channels = _CHANNELS[color_type]
    raw = zlib.decompress(b"".join(idat))
    stride = 1 + width * channels
    if len(raw) != height * stride:
        raise ValueError("PNG image data has the wrong size")
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, stride)
    if np.any(rows[:, 0] != 0):
        raise ValueError("only PNG filter type 0 is supported")
    pixels = rows[:, 1:].reshape(height, width, channels)
    return pixels[:, :, 0].copy() if channels == 1 else pixels.copy()


def read_png(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG written by this module back into a uint8 (H, W) or (H, W, 3) array."""
    return decode_png(Path(path).read_bytes())


# --------------------------------------------------------------------------- image grids


def _to_uint8(images: np.ndarray) -> np.ndarray:
    """uint8 passes through; floats are read as [0, 1] intensities, clipped, NaN -> 0."""
    if images.dtype == np.uint8:
        return images
    values = np.nan_to_num(images.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def image_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile (N, H, W) images (floats in [0, 1] or uint8) into one uint8 greyscale image.

    The grid is near-square by default; ``pad`` pixels of grey separate and surround tiles.
    """
    arr = np.asarray(images)
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise ValueError(f"image_grid expects a non-empty (N, H, W) array, got {arr.shape}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    n, h, w = arr.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    tiles = _to_uint8(arr)
    grid = np.full(
        (nrows * h + (nrows + 1) * pad, ncols * w + (ncols + 1) * pad),
        GRID_PAD_VALUE,
        dtype=np.uint8,
    )
    for i in range(n):
        r, c = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top : top + h, left : left + w] = tiles[i]
    return grid


# --------------------------------------------------------------------------- scatter plots


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
