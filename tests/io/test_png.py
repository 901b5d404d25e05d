"""The PNG reader on files written by another encoder: the one here, built from zlib and struct by hand.

The encoder below shares no code with :mod:`tinygan.io.png_decode`: it filters each scanline
with the filter the test asks for (the PNG specification's formulas, byte by byte), packs
1/2/4-bit samples, splits an image into Adam7 passes and writes the chunks. The decoded pixels
are compared with pixels known in advance.
"""

from __future__ import annotations

import struct
import zlib

import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest

from tinygan.io.png import decode_png, png_bytes, read_png, write_png
from tinygan.io.png_decode import png_header

SIGNATURE = b"\x89PNG\r\n\x1a\n"
SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(values: np.ndarray, depth: int) -> bytes:
    """One scanline's samples (a flat sequence) as bytes at ``depth`` bits per sample."""
    if depth == 16:
        return b"".join(struct.pack(">H", int(v)) for v in values)
    if depth == 8:
        return bytes(int(v) for v in values)
    bits = "".join(format(int(v), f"0{depth}b") for v in values)
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))


def paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def filter_row(kind: int, line: bytes, prior: bytes, bpp: int) -> bytes:
    """The PNG specification's filter ``kind`` applied to ``line`` (``prior``: the line above, unfiltered)."""
    out = []
    for i, x in enumerate(line):
        a = line[i - bpp] if i >= bpp else 0
        b = prior[i]
        c = prior[i - bpp] if i >= bpp else 0
        predict = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
        out.append((x - predict) % 256)
    return bytes([kind]) + bytes(out)


def scanlines(samples: np.ndarray, depth: int, filters: list[int]) -> bytes:
    """Filtered scanlines of ``(H, W, S)`` samples; row ``r`` uses ``filters[r % len(filters)]``."""
    h, w, s = samples.shape
    bpp = max(1, s * depth // 8)
    lines = [pack_row(samples[r].reshape(-1), depth) for r in range(h)]
    prior, out = bytes(len(lines[0])), b""
    for r, line in enumerate(lines):
        out += filter_row(filters[r % len(filters)], line, prior, bpp)
        prior = line
    return out


def encode(samples, colour_type, depth=8, filters=(0,), palette=None, interlace=False, idat_parts=1):
    """A PNG file of ``samples`` ``(H, W, S)`` written by hand."""
    samples = np.asarray(samples)
    if samples.ndim == 2:
        samples = samples[:, :, None]
    h, w, _ = samples.shape
    filters = list(filters)
    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            part = samples[y0::dy, x0::dx]
            if part.shape[0] and part.shape[1]:
                raw += scanlines(part, depth, filters)
    else:
        raw = scanlines(samples, depth, filters)
    data = zlib.compress(raw, 9)
    step = -(-len(data) // idat_parts)
    idats = b"".join(chunk(b"IDAT", data[i : i + step]) for i in range(0, len(data), step))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, int(interlace))
    plte = b"" if palette is None else chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes())
    text = chunk(b"tEXt", b"Comment\x00made by hand")  # an ancillary chunk to skip
    return SIGNATURE + chunk(b"IHDR", ihdr) + text + plte + idats + chunk(b"IEND", b"")


RNG = np.random.default_rng(7)
GREY = RNG.integers(0, 256, (7, 11), dtype=np.uint8)
RGB = RNG.integers(0, 256, (6, 9, 3), dtype=np.uint8)


@pytest.mark.parametrize("kind", [0, 1, 2, 3, 4])
def test_each_filter_type_greyscale_and_rgb(kind):
    assert np.array_equal(decode_png(encode(GREY, 0, filters=[kind])), GREY)
    assert np.array_equal(decode_png(encode(RGB, 2, filters=[kind])), RGB)


def test_filters_mixed_row_by_row_and_image_data_split_across_chunks():
    png = encode(RGB, 2, filters=[4, 3, 1, 0, 2], idat_parts=3)
    assert np.array_equal(decode_png(png), RGB)
    assert np.array_equal(decode_png(encode(GREY, 0, filters=[3, 4, 2, 1])), GREY)


@pytest.mark.parametrize("kind", [0, 1, 2, 3, 4])
def test_sixteen_bit_samples_round_to_eight(kind):
    values = np.array([[0, 128, 129, 385, 386], [65535, 65406, 65407, 257 * 100, 257 * 100 + 128]], np.uint16)
    expected = np.array([[0, 0, 1, 1, 2], [255, 254, 255, 100, 100]], np.uint8)  # round(v / 257)
    assert np.array_equal(decode_png(encode(values, 0, depth=16, filters=[kind])), expected)
    rgb16 = RGB.astype(np.uint16) * 257  # exact: each 8-bit value comes back
    assert np.array_equal(decode_png(encode(rgb16, 2, depth=16, filters=[kind])), RGB)


@pytest.mark.parametrize("depth, scale", [(1, 255), (2, 85), (4, 17)])
@pytest.mark.parametrize("kind", [0, 1, 4])
def test_low_bit_depth_greyscale(depth, scale, kind):
    values = RNG.integers(0, 2**depth, (5, 13), dtype=np.uint8)  # 13 columns: rows end mid-byte
    assert np.array_equal(decode_png(encode(values, 0, depth=depth, filters=[kind])), values * scale)


@pytest.mark.parametrize("depth", [1, 2, 4, 8])
def test_palette_images(depth):
    colours = RNG.integers(0, 256, (2**depth if depth < 8 else 200, 3), dtype=np.uint8)
    index = RNG.integers(0, len(colours), (6, 10), dtype=np.uint8)
    got = decode_png(encode(index, 3, depth=depth, filters=[0, 4, 1], palette=colours))
    assert got.shape == (6, 10, 3)
    assert np.array_equal(got, colours[index])


@pytest.mark.parametrize("kind", [0, 3, 4])
def test_alpha_is_dropped(kind):
    alpha = RNG.integers(0, 256, (6, 9, 1), dtype=np.uint8)
    assert np.array_equal(decode_png(encode(np.concatenate([RGB, alpha], 2), 6, filters=[kind])), RGB)
    grey_alpha = np.stack([GREY, np.zeros_like(GREY)], axis=2)  # fully transparent: the grey is still kept
    assert np.array_equal(decode_png(encode(grey_alpha, 4, filters=[kind])), GREY)
    rgba16 = np.concatenate([RGB, alpha], 2).astype(np.uint16) * 257
    assert np.array_equal(decode_png(encode(rgba16, 6, depth=16, filters=[kind])), RGB)


@pytest.mark.parametrize("shape", [(1, 1), (3, 2), (8, 8), (13, 17), (28, 28)])
def test_adam7_interlaced(shape):
    grey = RNG.integers(0, 256, shape, dtype=np.uint8)
    assert np.array_equal(decode_png(encode(grey, 0, filters=[1, 4, 3, 2], interlace=True)), grey)
    rgb = RNG.integers(0, 256, (*shape, 3), dtype=np.uint8)
    assert np.array_equal(decode_png(encode(rgb, 2, filters=[4], interlace=True)), rgb)
    bits = RNG.integers(0, 2, shape, dtype=np.uint8)
    assert np.array_equal(decode_png(encode(bits, 0, depth=1, filters=[2], interlace=True)), bits * 255)


def test_header_is_read_without_the_image():
    header = png_header(encode(RGB, 2, depth=16))
    assert (header.width, header.height, header.depth, header.channels) == (9, 6, 16, 3)
    assert png_header(png_bytes(GREY)).channels == 1


def test_what_the_package_writes_reads_back(tmp_path):
    write_png(tmp_path / "a.png", RGB)
    assert np.array_equal(read_png(tmp_path / "a.png"), RGB)


def test_written_by_pillow_when_installed(tmp_path):
    image = pytest.importorskip("PIL.Image")
    for mode, pixels in [("L", GREY), ("RGB", RGB)]:
        for options in [{}, {"optimize": True}, {"compress_level": 9}]:
            path = tmp_path / f"{mode}.png"
            image.fromarray(pixels, mode).save(path, **options)
            assert np.array_equal(read_png(path), pixels)
    image.fromarray(RGB).convert("P", palette=image.Palette.ADAPTIVE, colors=16).save(tmp_path / "p.png")
    assert np.array_equal(read_png(tmp_path / "p.png"), np.asarray(image.open(tmp_path / "p.png").convert("RGB")))


# -- damage: one line each -----------------------------------------------------------------------


def _fails(data: bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        decode_png(data)
    assert "\n" not in str(info.value)


def test_not_a_png():
    _fails(b"GIF89a" + bytes(40), "not a PNG")
    _fails(b"", "not a PNG")
    _fails(b"\x89PNG", "not a PNG")


def test_truncated_anywhere():
    good = encode(RGB, 2, filters=[4])
    for cut in [9, 20, 33, 40, len(good) - 20, len(good) - 5, len(good) - 1]:
        _fails(good[:cut], "truncated")


def test_bad_crc_and_bad_data():
    good = bytearray(encode(GREY, 0, filters=[1]))
    damaged = bytearray(good)
    damaged[40] ^= 0x55  # inside a chunk's payload
    _fails(bytes(damaged), "CRC")
    body = zlib.compress(b"\x00" * 5)  # far fewer scanline bytes than the header promises
    short = SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0))
    _fails(short + chunk(b"IDAT", body) + chunk(b"IEND", b""), "truncated")
    junk = short + chunk(b"IDAT", b"not zlib at all") + chunk(b"IEND", b"")
    _fails(junk, "corrupt PNG image data")
    long = short + chunk(b"IDAT", zlib.compress(b"\x00" * 50)) + chunk(b"IEND", b"")
    _fails(long, "longer than")


def test_invalid_headers_filters_and_palettes():
    def png(w=2, h=2, depth=8, colour=0, interlace=0, raw=b"\x00\x00\x00" * 2, extra=b""):
        ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, interlace))
        return SIGNATURE + ihdr + extra + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")

    assert decode_png(png()).shape == (2, 2)
    _fails(png(w=0), "empty")
    _fails(png(depth=3), "bit depth 3")
    _fails(png(colour=2, depth=4), "colour type 2 with bit depth 4")
    _fails(png(colour=5), "colour type 5")
    _fails(png(interlace=2), "interlace 2")
    _fails(png(raw=b"\x05\x00\x00\x00\x00\x00"), "filter type 5")
    _fails(png(colour=3), "no PLTE")
    _fails(png(colour=3, extra=chunk(b"PLTE", b"\x00\x00")), "PLTE")
    _fails(png(colour=3, raw=b"\x00\x00\x01\x00\x00\x00", extra=chunk(b"PLTE", b"\x00" * 3)), "palette index 1")
    _fails(png(extra=chunk(b"ABCD", b"")), "critical")
    _fails(SIGNATURE + chunk(b"IEND", b""), "IHDR")
    _fails(png()[:-12], "IEND")


# -- any damage: a one-line ValueError or a well-formed image, never another exception ------------

def _decodes_or_refuses(data: bytes) -> None:
    try:
        pixels = decode_png(data)
    except ValueError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert pixels.dtype == np.uint8 and pixels.ndim in (2, 3) and 0 not in pixels.shape


SAMPLES_PNGS = [
    encode(RGB, 2, filters=[0, 1, 2, 3, 4]),
    encode(GREY[:4, :5], 0, depth=4, filters=[4], interlace=True),
    encode(RNG.integers(0, 4, (5, 6), dtype=np.uint8), 3, depth=2, filters=[3], palette=[[0, 0, 0], [9, 9, 9]]),
]


@hypothesis.settings(max_examples=150, deadline=None)
@hypothesis.given(
    st.sampled_from(range(len(SAMPLES_PNGS))),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    st.integers(0, 10_000),
)
def test_damaged_files_are_refused_in_one_line(which, flips, cut):
    data = bytearray(SAMPLES_PNGS[which])
    for where, value in flips:
        data[where % len(data)] = value
    _decodes_or_refuses(bytes(data[: max(cut, 1)]))


@hypothesis.settings(max_examples=150, deadline=None)
@hypothesis.given(
    st.integers(0, 70), st.integers(0, 70), st.sampled_from([1, 2, 4, 8, 16, 3]), st.sampled_from([0, 2, 3, 4, 6, 1]),
    st.integers(0, 2), st.binary(max_size=300),
)
def test_any_header_over_any_data_is_refused_in_one_line(width, height, depth, colour, interlace, body):
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace))
    plte = chunk(b"PLTE", bytes(range(12)))
    for raw in (body, zlib.compress(body)):
        _decodes_or_refuses(SIGNATURE + ihdr + plte + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
