"""PNG encoding/decoding (tinygan.io.png), image grids (tinygan.evaluation.pictures) and scatter plots."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tinygan.evaluation.pictures import GRID_PAD_VALUE, image_grid
from tinygan.evaluation.scatter import BACKGROUND_COLOR, FAKE_COLOR, REAL_COLOR, scatter_png
from tinygan.io.png import PNG_SIGNATURE, decode_png, png_bytes, read_png, write_png


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """Independent chunk parser for checks: [(type, payload)], verifying every CRC."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    out, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, payload = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + payload)
        out.append((kind, payload))
        pos += 12 + length
    return out


def _zlib_only_decode(png: bytes) -> np.ndarray:
    """Decode with nothing but zlib and struct (filter 0, 8-bit), independent of the module."""
    chunks = _chunks(png)
    width, height, depth, ctype, _, _, _ = struct.unpack(">IIBBBBB", chunks[0][1])
    channels = {0: 1, 2: 3}[ctype]
    raw = zlib.decompress(b"".join(p for k, p in chunks if k == b"IDAT"))
    rows = np.frombuffer(raw, np.uint8).reshape(height, 1 + width * channels)
    assert np.all(rows[:, 0] == 0)
    img = rows[:, 1:].reshape(height, width, channels)
    return img[:, :, 0] if channels == 1 else img


# --------------------------------------------------------------------------- PNG


def test_png_signature_and_ihdr():
    png = png_bytes(np.zeros((7, 13), np.uint8))
    assert png.startswith(PNG_SIGNATURE) and PNG_SIGNATURE == b"\x89PNG\r\n\x1a\n"
    chunks = _chunks(png)
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (width, height, depth, ctype) == (13, 7, 8, 0)
    assert (comp, filt, interlace) == (0, 0, 0)
    rgb = _chunks(png_bytes(np.zeros((2, 3, 3), np.uint8)))
    assert struct.unpack(">IIBB", rgb[0][1][:10]) == (3, 2, 8, 2)


@pytest.mark.parametrize("shape", [(1, 1), (5, 9), (16, 4, 3)])
def test_png_round_trip(tmp_path, shape):
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / "img.png"
    write_png(path, pixels)
    np.testing.assert_array_equal(read_png(path), pixels)
    np.testing.assert_array_equal(_zlib_only_decode(path.read_bytes()), pixels)


@settings(max_examples=40, deadline=None)
@given(
    arrays(
        np.uint8,
        st.tuples(st.integers(1, 12), st.integers(1, 12), st.sampled_from([None, 3])).map(
            lambda s: s[:2] if s[2] is None else s
        ),
    )
)
def test_png_round_trip_property(pixels):
    np.testing.assert_array_equal(decode_png(png_bytes(pixels)), pixels)


def test_write_png_is_atomic_and_overwrites(tmp_path):
    path = tmp_path / "out.png"
    write_png(path, np.zeros((2, 2), np.uint8))
    write_png(path, np.full((3, 3), 200, np.uint8))
    assert read_png(path).shape == (3, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temp files left behind


def test_write_png_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="shape"):
        png_bytes(np.zeros((2, 2, 4), np.uint8))
    with pytest.raises(ValueError, match="non-empty"):
        png_bytes(np.zeros((0, 2), np.uint8))
    with pytest.raises(ValueError):
        write_png(tmp_path / "x.png", np.zeros(5, np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_decode_png_rejects_damage():
    png = bytearray(png_bytes(np.zeros((2, 2), np.uint8)))
    with pytest.raises(ValueError, match="signature"):
        decode_png(b"GIF89a")
    png[20] ^= 1  # inside IHDR: CRC no longer matches
    with pytest.raises(ValueError, match="CRC"):
        decode_png(bytes(png))


# --------------------------------------------------------------------------- grids


def test_image_grid_shape_and_layout():
    images = np.random.default_rng(0).random((10, 5, 6))
    grid = image_grid(images)  # 10 images -> 4 columns, 3 rows
    assert grid.dtype == np.uint8 and grid.shape == (3 * 5 + 4 * 2, 4 * 6 + 5 * 2)
    np.testing.assert_array_equal(grid[2:7, 2:8], np.round(images[0] * 255).astype(np.uint8))
    np.testing.assert_array_equal(grid[2:7, 10:16], np.round(images[1] * 255).astype(np.uint8))
    assert grid[0, 0] == GRID_PAD_VALUE and grid[-1, -1] == GRID_PAD_VALUE  # empty last cells


def test_image_grid_options():
    images = np.zeros((6, 4, 4))
    assert image_grid(images, ncols=6, pad=0).shape == (4, 24)
    assert image_grid(images, ncols=2, pad=1).shape == (3 * 4 + 4, 2 * 4 + 3)
    assert image_grid(images[:1]).shape == (8, 8)
    assert image_grid(np.full((4, 3, 3), 255, np.uint8), pad=0).min() == 255  # uint8 as-is


def test_image_grid_clips_values():
    images = np.array([[[-1.0, 0.5, 2.0, np.nan]]])
    np.testing.assert_array_equal(image_grid(images, pad=0), [[0, 128, 255, 0]])


def test_image_grid_rejects_bad_input():
    with pytest.raises(ValueError):
        image_grid(np.zeros((4, 4)))
    with pytest.raises(ValueError):
        image_grid(np.zeros((0, 4, 4)))


# --------------------------------------------------------------------------- scatter


def _colour_count(img: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int(np.all(img == np.array(colour, np.uint8), axis=-1).sum())


def test_scatter_png_writes_rgb(tmp_path):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(500, 2))
    fake = rng.normal(size=(500, 2)) + 0.5
    path = tmp_path / "scatter.png"
    scatter_png(path, fake, real, size=128)
    chunks = _chunks(path.read_bytes())
    assert struct.unpack(">IIBB", chunks[0][1][:10]) == (128, 128, 8, 2)
    img = read_png(path)
    assert img.shape == (128, 128, 3)
    assert _colour_count(img, FAKE_COLOR) > 100 and _colour_count(img, REAL_COLOR) > 100
    assert _colour_count(img, BACKGROUND_COLOR) > 128 * 128 // 3  # mostly white


def test_scatter_png_positions_and_extent(tmp_path):
    path = tmp_path / "one.png"
    # One point in the top-right quarter; y grows upwards in the plot.
    scatter_png(path, np.array([[0.5, 0.5]]), size=64, extent=(-1, 1, -1, 1))
    ys, xs = np.nonzero(np.all(read_png(path) == FAKE_COLOR, axis=-1))
    assert len(ys) > 0 and ys.max() < 32 and xs.min() > 32
    # Points outside the extent and non-finite points are skipped, not errors.
    scatter_png(
        path, np.array([[5.0, 5.0], [np.nan, 0.0], [np.inf, 1.0]]), size=64, extent=(-1, 1, -1, 1)
    )
    assert _colour_count(read_png(path), FAKE_COLOR) == 0


def test_scatter_png_fake_only_and_degenerate(tmp_path):
    path = tmp_path / "s.png"
    scatter_png(path, np.zeros((10, 2)))  # all points identical: extent must still work
    assert _colour_count(read_png(path), FAKE_COLOR) > 0
    scatter_png(path, np.full((3, 2), np.nan))  # nothing drawable: still a valid image
    assert read_png(path).shape == (512, 512, 3)


def test_scatter_png_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="fake"):
        scatter_png(tmp_path / "a.png", np.zeros((4, 3)))
    with pytest.raises(ValueError, match="real"):
        scatter_png(tmp_path / "a.png", np.zeros((4, 2)), real=np.zeros(4))
    with pytest.raises(ValueError, match="extent"):
        scatter_png(tmp_path / "a.png", np.zeros((4, 2)), extent=(1, 0, 0, 1))
