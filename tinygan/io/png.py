"""PNG files with only numpy and the standard library (zlib + struct): writing, and reading.

The writer emits 8-bit greyscale or RGB images with filter type 0; zlib still compresses the
mostly flat images a model draws well. The reader (:mod:`tinygan.io.png_decode`) takes the PNG
files other programs write: every colour type, bit depth, filter type and Adam7 interlacing.
"""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np

from .files import atomic_write_bytes
from .png_decode import PNG_SIGNATURE, decode_png, read_png

__all__ = ["PNG_SIGNATURE", "decode_png", "png_bytes", "read_png", "write_png"]

# PNG colour types this module writes: 0 = greyscale, 2 = RGB (both 8 bits per sample).
_COLOR_TYPES = {1: 0, 3: 2}


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
