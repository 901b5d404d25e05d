"""Reading PNG files as other programs write them, with only numpy and the standard library.

:func:`decode_png` takes every PNG colour type -- greyscale, RGB, palette, greyscale + alpha and
RGBA -- at every bit depth the format allows (1, 2, 4, 8 and 16), all five scanline filters
(None, Sub, Up, Average, Paeth) and Adam7 interlacing. It returns uint8 pixels:

* greyscale and greyscale + alpha as ``(H, W)``; RGB, RGBA and palette images as ``(H, W, 3)``;
* alpha is **dropped**: the stored colour is kept as it is, as an image viewer shows it on an
  opaque background, whatever the alpha says (a ``tRNS`` chunk is ignored likewise);
* 16-bit samples become 8-bit by rounding ``v / 257``; 1-, 2- and 4-bit greyscale is scaled to
  0..255 (a 1-bit image is 0 or 255).

Sub and Up are whole-row numpy operations. Average and Paeth depend on the byte just decoded to
the left, so their rows are undone byte by byte in plain Python; rows of filter None -- all of
them, in the files :mod:`tinygan.io.png` writes -- cost no loop at all.

Every failure is a :class:`ValueError` with a one-line message; the caller names the file.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Colour type -> (samples per pixel, allowed bit depths).
_FORMATS = {0: (1, (1, 2, 4, 8, 16)), 2: (3, (8, 16)), 3: (1, (1, 2, 4, 8)), 4: (2, (8, 16)), 6: (4, (8, 16))}
_COLOUR_NAMES = {0: "greyscale", 2: "RGB", 3: "palette", 4: "greyscale+alpha", 6: "RGBA"}
# The seven Adam7 passes: first column, first row, column step, row step.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_KNOWN_CRITICAL = (b"IHDR", b"PLTE", b"IDAT", b"IEND")


class PNGHeader(NamedTuple):
    """What a PNG's IHDR chunk says."""

    width: int
    height: int
    depth: int
    colour_type: int
    interlaced: bool

    @property
    def samples(self) -> int:
        """Samples per pixel as stored (palette indices count as one)."""
        return _FORMATS[self.colour_type][0]

    @property
    def channels(self) -> int:
        """Channels of the decoded pixels: 1 for greyscale (with or without alpha), 3 for colour."""
        return 1 if self.colour_type in (0, 4) else 3

    @property
    def bpp(self) -> int:
        """Bytes per complete pixel, at least 1: the distance the Sub, Average and Paeth filters look left."""
        return max(1, self.samples * self.depth // 8)

    def stride(self, width: int) -> int:
        """Bytes of one scanline of ``width`` pixels, without its filter byte."""
        return (width * self.samples * self.depth + 7) // 8

    def passes(self) -> list[tuple[int, int, int, int, int, int]]:
        """``(x0, y0, dx, dy, width, height)`` of each non-empty sub-image, one for a plain image."""
        if not self.interlaced:
            return [(0, 0, 1, 1, self.width, self.height)]
        out = []
        for x0, y0, dx, dy in _ADAM7:
            w, h = (self.width - x0 + dx - 1) // dx, (self.height - y0 + dy - 1) // dy
            if w > 0 and h > 0:
                out.append((x0, y0, dx, dy, w, h))
        return out

    def raw_size(self) -> int:
        """Bytes of the decompressed image data: every scanline of every pass with its filter byte."""
        return sum(h * (1 + self.stride(w)) for _, _, _, _, w, h in self.passes())


def _iter_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield (type, payload) for each chunk, checking lengths and CRCs."""
    pos, size = len(PNG_SIGNATURE), len(data)
    while pos < size:
        if pos + 8 > size:
            raise ValueError("truncated PNG chunk header")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 8 + length
        if end + 4 > size:
            raise ValueError(f"truncated PNG chunk {kind!r}")
        payload = data[pos + 8 : end]
        if struct.unpack_from(">I", data, end)[0] != zlib.crc32(payload, zlib.crc32(kind)):
            raise ValueError(f"bad CRC in PNG chunk {kind!r}")
        yield kind, payload
        pos = end + 4


def _parse_header(payload: bytes) -> PNGHeader:
    if len(payload) != 13:
        raise ValueError(f"PNG IHDR chunk has {len(payload)} bytes, expected 13")
    width, height, depth, colour_type, compression, filtering, interlace = struct.unpack(">IIBBBBB", payload)
    if width == 0 or height == 0:
        raise ValueError(f"PNG image is empty ({width}x{height})")
    if colour_type not in _FORMATS or depth not in _FORMATS[colour_type][1]:
        raise ValueError(f"invalid PNG format: colour type {colour_type} with bit depth {depth}")
    if compression != 0 or filtering != 0 or interlace not in (0, 1):
        raise ValueError(f"invalid PNG header (compression {compression}, filter {filtering}, interlace {interlace})")
    return PNGHeader(width, height, depth, colour_type, interlace == 1)


def _read_chunks(data: bytes) -> tuple[PNGHeader, bytes, np.ndarray | None]:
    """The header, the concatenated compressed image data and the palette (``None`` without PLTE)."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file (bad signature)")
    found: dict[bytes, list[bytes]] = {}
    for kind, payload in _iter_chunks(data):
        if not found and kind != b"IHDR":
            raise ValueError(f"PNG does not start with an IHDR chunk (found {kind!r})")
        if not kind[0] & 0x20 and kind not in _KNOWN_CRITICAL:  # upper-case first letter: needed to read it
            raise ValueError(f"unsupported critical PNG chunk {kind!r}")
        found.setdefault(kind, []).append(payload)
        if kind == b"IEND":
            break
    if not found:
        raise ValueError("PNG has no IHDR chunk")
    if b"IDAT" not in found or b"IEND" not in found:
        raise ValueError("truncated PNG (no image data)" if b"IDAT" not in found else "truncated PNG (no IEND chunk)")
    header = _parse_header(found[b"IHDR"][0])
    palette = _parse_palette(found[b"PLTE"][0]) if b"PLTE" in found else None
    if header.colour_type == 3 and palette is None:
        raise ValueError("palette PNG has no PLTE chunk")
    return header, b"".join(found[b"IDAT"]), palette


def _parse_palette(payload: bytes) -> np.ndarray:
    if len(payload) % 3 or not 3 <= len(payload) <= 768:
        raise ValueError(f"PNG PLTE chunk has {len(payload)} bytes, expected 3 to 768 in steps of 3")
    return np.frombuffer(payload, np.uint8).reshape(-1, 3)


def _inflate(compressed: bytes, expected: int) -> bytes:
    """The decompressed image data, which must be exactly ``expected`` bytes (never more is produced)."""
    try:
        raw = zlib.decompressobj().decompress(compressed, expected + 1)
    except zlib.error as e:
        raise ValueError(f"corrupt PNG image data ({e})") from None
    if len(raw) != expected:
        which = "truncated" if len(raw) < expected else "longer than its header says"
        raise ValueError(f"PNG image data is {which} ({len(raw)} bytes, expected {expected})")
    return raw


# -- scanline filters ---------------------------------------------------------------------------------


def _average(line: np.ndarray, up: np.ndarray, bpp: int) -> np.ndarray:
    """Undo filter 3: each byte adds the floor of the mean of the decoded bytes left and above."""
    out, above = bytearray(line.tobytes()), up.tolist()
    for i in range(min(bpp, len(out))):
        out[i] = (out[i] + (above[i] >> 1)) & 0xFF
    for i in range(bpp, len(out)):
        out[i] = (out[i] + ((out[i - bpp] + above[i]) >> 1)) & 0xFF
    return np.frombuffer(bytes(out), np.uint8)


def _paeth(line: np.ndarray, up: np.ndarray, bpp: int) -> np.ndarray:
    """Undo filter 4: each byte adds whichever of left, above and upper-left is nearest left + above − upper-left."""
    out, above = bytearray(line.tobytes()), up.tolist()
    upper_left = [0] * bpp + above[: len(above) - bpp]
    for i in range(len(out)):
        a = out[i - bpp] if i >= bpp else 0
        b, c = above[i], upper_left[i]
        pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
        out[i] = (out[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    return np.frombuffer(bytes(out), np.uint8)


def _unfilter(raw: bytes, start: int, height: int, stride: int, bpp: int) -> np.ndarray:
    """The ``(height, stride)`` bytes of the scanlines at ``raw[start:]`` with their filters undone."""
    rows = np.frombuffer(raw, np.uint8, count=height * (stride + 1), offset=start).reshape(height, stride + 1)
    out = rows[:, 1:].copy()
    kinds = raw[start : start + height * (stride + 1) : stride + 1]  # each scanline's filter byte
    if not kinds.strip(b"\x00"):
        return out  # filter None throughout: nothing to undo
    if max(kinds) > 4:
        raise ValueError(f"invalid PNG filter type {max(kinds)}")
    previous = np.zeros(stride, np.uint8)
    for r, kind in enumerate(kinds):
        if kind == 1:
            out[r] = np.cumsum(out[r].reshape(-1, bpp), axis=0, dtype=np.uint8).ravel()  # sums wrap mod 256
        elif kind == 2:
            out[r] += previous
        elif kind == 3:
            out[r] = _average(out[r], previous, bpp)
        elif kind == 4:
            out[r] = _paeth(out[r], previous, bpp)
        previous = out[r]
    return out


# -- samples to pixels --------------------------------------------------------------------------------


def _samples(rows: np.ndarray, width: int, header: PNGHeader) -> np.ndarray:
    """The ``(h, width, samples)`` sample values of unfiltered scanlines (uint16 for 16-bit images)."""
    h, depth = rows.shape[0], header.depth
    if depth == 8:
        return rows.reshape(h, width, header.samples)
    if depth == 16:
        return rows.view(">u2").astype(np.uint16).reshape(h, width, header.samples)
    shifts = np.arange(8 - depth, -1, -depth, dtype=np.uint8)  # 1, 2 and 4 bits: one sample per pixel
    values = (rows[:, :, None] >> shifts) & ((1 << depth) - 1)
    return values.reshape(h, -1)[:, :width, None]


def _pixels(samples: np.ndarray, header: PNGHeader, palette: np.ndarray | None) -> np.ndarray:
    """uint8 ``(H, W)`` or ``(H, W, 3)`` pixels of a whole image's samples."""
    if header.colour_type == 3:
        index = samples[:, :, 0]
        if int(index.max()) >= len(palette):
            raise ValueError(f"PNG palette index {int(index.max())} outside its {len(palette)} colours")
        return palette[index]
    if header.depth == 16:
        samples = ((samples.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif header.depth < 8:
        samples = samples * np.uint8(255 // ((1 << header.depth) - 1))
    if header.channels == 1:
        return np.ascontiguousarray(samples[:, :, 0])  # greyscale; alpha, if any, dropped
    return np.ascontiguousarray(samples[:, :, :3])  # RGB; alpha, if any, dropped


def png_header(data: bytes) -> PNGHeader:
    """The header of the PNG file ``data`` (only the signature and the first chunk are read)."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file (bad signature)")
    for kind, payload in _iter_chunks(data[: len(PNG_SIGNATURE) + 25]):
        if kind == b"IHDR":
            return _parse_header(payload)
        break
    raise ValueError("PNG does not start with an IHDR chunk")


def decode_png(data: bytes) -> np.ndarray:
    """Decode the PNG file ``data`` into uint8 ``(H, W)`` greyscale or ``(H, W, 3)`` RGB pixels."""
    header, compressed, palette = _read_chunks(data)
    raw = _inflate(compressed, header.raw_size())
    passes, pos, whole = header.passes(), 0, None
    for x0, y0, dx, dy, w, h in passes:
        stride = header.stride(w)
        part = _samples(_unfilter(raw, pos, h, stride, header.bpp), w, header)
        pos += h * (stride + 1)
        if len(passes) == 1:
            whole = part
            break
        if whole is None:
            whole = np.zeros((header.height, header.width, header.samples), part.dtype)
        whole[y0::dy, x0::dx] = part
    return _pixels(whole, header, palette)


def read_png(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG file into a uint8 ``(H, W)`` or ``(H, W, 3)`` array (see :func:`decode_png`)."""
    return decode_png(Path(path).read_bytes())
