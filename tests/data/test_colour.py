"""Colour and any size: (N, H, W, C) samples from files and for fit, and colour pictures of them."""

from __future__ import annotations

import numpy as np
import pytest

from tinygan import GAN, VAE, DataError, load_dataset
from tinygan.data.validate import check_samples
from tinygan.evaluation.pictures import (
    GRID_PAD_VALUE,
    as_images,
    comparison_grid,
    image_grid,
    write_reconstructions,
    write_samples,
)
from tinygan.io.png import read_png

pytestmark = pytest.mark.usefixtures("numpy_one_blas_thread")
RNG = np.random.default_rng(3)
COLOUR = RNG.integers(0, 256, (40, 6, 5, 3), dtype=np.uint8)
TINY = {"g_hidden": [16], "d_hidden": [16], "g_batchnorm": False, "d_batchnorm": False, "latent_dim": 4,
        "batch_size": 8}


@pytest.mark.parametrize(
    "array, shape",
    [
        (COLOUR, (6, 5, 3)),
        (COLOUR.astype(np.float32) / 255, (6, 5, 3)),
        (COLOUR[..., :1], (6, 5)),  # one channel: greyscale
        (COLOUR[:, :, :, 0], (6, 5)),
    ],
)
def test_a_file_of_colour_or_any_size(tmp_path, array, shape):
    path = tmp_path / "mine.npy"
    np.save(path, array)
    ds = load_dataset(path)
    assert ds.kind == "image" and ds.sample_shape == shape and len(ds) == 40
    assert ds.value_range == ((0.0, 255.0) if array.dtype == np.uint8 else (0.0, 1.0))


@pytest.mark.parametrize("channels", [2, 4])
def test_other_channel_counts_are_refused(tmp_path, channels):
    path = tmp_path / "mine.npy"
    np.save(path, np.zeros((4, 3, 3, channels), np.uint8))
    with pytest.raises(DataError, match=rf"^{path}: expected shape .*C = 1 or 3, got \(4, 3, 3, {channels}\)$"):
        load_dataset(path)
    with pytest.raises(DataError, match="C = 1 or 3"):
        check_samples(np.zeros((2, 1, 1, 1, 1), np.uint8), "x")


def test_colour_grid_and_shapes():
    grid = image_grid(COLOUR[:4], ncols=2, pad=1)
    assert grid.shape == (2 * 6 + 3, 2 * 5 + 3, 3) and grid.dtype == np.uint8
    np.testing.assert_array_equal(grid[1:7, 1:6], COLOUR[0])
    np.testing.assert_array_equal(grid[8:14, 7:12], COLOUR[3])
    assert (grid[0] == GRID_PAD_VALUE).all()
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        image_grid(np.zeros((2, 3, 3, 2)))
    flat = COLOUR.reshape(40, -1)
    assert as_images(flat, (6, 5, 3)).shape == (40, 6, 5, 3)
    assert as_images(flat[:, :30], (6, 5, 1)).shape == (40, 6, 5)
    assert as_images(flat[:, :30], (6, 5)).shape == (40, 6, 5)
    assert comparison_grid([COLOUR[:3], COLOUR[:3]], (6, 5, 3), ncols=3).shape == (2 * 6 + 6, 3 * 5 + 8, 3)


def test_a_gan_fits_colour_images_and_draws_them(tmp_path):
    gan = GAN.from_preset("default", data_shape=(6, 5, 3), seed=0, **TINY)
    assert gan.config.data_dim == 90
    gan.fit(COLOUR, steps=3)
    gan.fit(COLOUR.reshape(40, 90), steps=4)  # flat rows too
    assert gan.sample(3).shape == (3, 6, 5, 3)
    write_samples(tmp_path / "s.png", gan, np.zeros((4, 4), np.float32))
    assert read_png(tmp_path / "s.png").shape == (2 * 6 + 6, 2 * 5 + 6, 3)


def test_a_conditional_class_grid_in_colour(tmp_path):
    labels = np.arange(40) % 3
    gan = GAN.from_preset("default", data_shape=(6, 5, 3), seed=0, n_classes=3, **TINY)
    gan.fit(COLOUR, steps=2, y=labels)
    write_samples(tmp_path / "c.png", gan, np.zeros((4, 4), np.float32))
    assert read_png(tmp_path / "c.png").shape == (3 * 6 + 8, 4 * 5 + 10, 3)  # a row per class


def test_vae_reconstructs_colour(tmp_path):
    vae = VAE.from_preset("vae", data_shape=(6, 5, 3), seed=0, enc_hidden=[16], dec_hidden=[16], latent_dim=4)
    vae.fit(COLOUR, steps=2, batch_size=8)
    recon = write_reconstructions(tmp_path / "r.png", vae, COLOUR[:4] / 255.0, noise=0.1)
    assert recon.shape == (4, 6, 5, 3)
    assert read_png(tmp_path / "r.png").shape == (3 * 6 + 8, 4 * 5 + 10, 3)
