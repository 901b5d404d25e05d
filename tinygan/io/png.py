"""PNG files with only numpy and the standard library (zlib + struct): writing, and reading back.

The writer emits 8-bit greyscale or RGB images with filter type 0; zlib still compresses the
mostly flat images a model draws well.
"""

from __future__ import annotations

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
