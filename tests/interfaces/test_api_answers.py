"""The Python API answers bad input as the command line does: one line naming the argument, a
``DataError`` for data and a ``ValueError`` for the rest, and NumPy scalars taken for Python's.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinygan import GAN, VAE, DataError

pytestmark = pytest.mark.usefixtures("numpy_one_blas_thread")


@pytest.fixture(scope="module")
def models():
    gan = GAN.from_preset("default", (8, 8), g_hidden=[16], d_hidden=[16], g_batchnorm=False, latent_dim=4,
                          n_classes=3, batch_size=16)
    vae = VAE.from_preset("vae", (8, 8), enc_hidden=[16], dec_hidden=[16], latent_dim=2, batch_size=16)
    return gan, vae


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((40, 8, 8)).astype(np.float32)


def refused(call, error: type[Exception], pattern: str) -> str:
    with pytest.raises(error, match=pattern) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize(
    ("bad", "pattern"),
    [
        ({"steps": -1}, r"^steps: expected an integer >= 1, got -1$"),
        ({"steps": 2.5}, r"^steps: expected an integer >= 1, got 2.5$"),
        ({"steps": True}, r"^steps: expected an integer >= 1, got True$"),
        ({"batch_size": 0}, r"^batch_size: expected an integer >= 1, got 0$"),
        ({"batch_size": 8.0}, r"^batch_size: expected an integer >= 1, got 8.0$"),
        ({"epochs": float("nan")}, r"^epochs: expected a finite number, got nan$"),
        ({"epochs": -1.0}, r"^epochs: expected a positive number, got -1.0$"),
        ({"log_every": 0}, r"^log_every: expected an integer >= 1, got 0$"),
    ],
    ids=["negative-steps", "fractional-steps", "bool-steps", "zero-batch", "float-batch", "nan-epochs",
         "negative-epochs", "zero-log"],
)
def test_fit_refuses_what_the_command_line_refuses(models, images, bad, pattern):
    _, vae = models
    refused(lambda: vae.fit(images, **bad), ValueError, pattern)
    assert vae.step == 0, "nothing was trained"


def test_fit_takes_numpy_integers(images):
    vae = VAE.from_preset("vae", (8, 8), enc_hidden=[8], dec_hidden=[8], latent_dim=2, batch_size=16)
    history = vae.fit(images, steps=np.int64(2), batch_size=np.int32(8), log_every=np.int64(1))
    assert [r["step"] for r in history] == [1, 2]


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (lambda v, x: v.elbo(x * 255), DataError, r"^samples to measure: float values must lie in \[0, 1\]"),
        (lambda v, x: v.reconstruct(np.full((2, 8, 8), np.nan)), DataError,
         r"^samples to reconstruct: contains NaN or infinite values$"),
        (lambda v, x: v.reconstruct(np.zeros((2, 27, 27))), DataError,
         r"^samples to reconstruct: expected shape \(N, 8, 8\) or \(N, 64\) with N > 0, got \(2, 27, 27\)$"),
        (lambda v, x: v.reconstruct(x.tolist()), DataError, r"^samples to reconstruct: expected a NumPy array"),
        (lambda v, x: v.reconstruct(x, batch=0), ValueError, r"^batch: expected an integer >= 1, got 0$"),
        (lambda v, x: v.elbo(x, seed=-1), ValueError, r"^seed: expected an integer >= 0, got -1$"),
        (lambda v, x: v.sample(2.5), ValueError, r"^number of samples: expected an integer >= 0, got 2.5$"),
        (lambda v, x: v.sample(2, z=np.zeros((2, 3))), ValueError, r"^z: expected 2 latent vectors"),
    ],
    ids=["elbo-0-255", "reconstruct-nan", "reconstruct-shape", "reconstruct-list", "batch-0", "seed", "sample-2.5",
         "z-shape"],
)
def test_a_vae_checks_what_it_is_given(models, images, call, error, pattern):
    refused(lambda: call(models[1], images), error, pattern)


def test_a_vae_measures_what_fit_measures(models, images):
    _, vae = models
    assert np.isfinite(vae.elbo(images)["neg_elbo"])
    assert vae.reconstruct((images * 255).astype(np.uint8)).shape == (40, 8, 8)


@pytest.mark.parametrize(
    ("labels", "pattern"),
    [
        (3.0, r"^unknown class 3.0: expected one of 0, 1, 2 \(or a class number 0..2\)$"),
        (object(), r"^unknown class <object object at .*>: expected one of 0, 1, 2"),
        ("cat", r"^unknown class 'cat': expected one of 0, 1, 2"),
        ([0, 1], r"^labels: expected one class per sample \(4\), got 2$"),
    ],
    ids=["float", "object", "name", "count"],
)
def test_sample_names_a_bad_class(models, labels, pattern):
    refused(lambda: models[0].sample(4, labels=labels), ValueError, pattern)


def test_numpy_scalars_are_taken_for_pythons(models):
    gan = GAN.from_preset("default", data_shape=(np.int64(8), 8), n_classes=np.int64(10), lr_g=np.float32(1e-3),
                          g_hidden=[np.int64(16)], d_hidden=[16], g_batchnorm=np.bool_(False))
    assert gan.config.n_classes == 10 and type(gan.config.n_classes) is int
    assert gan.config.data_shape == (8, 8) and type(gan.config.lr_g) is float
    assert gan.sample(np.int64(3), labels=np.int64(2)).shape == (3, 8, 8)
    assert gan.sample(2, labels=np.array(1)).shape == (2, 8, 8)


def test_save_to_a_folder_is_one_line(models, tmp_path):
    refused(lambda: models[1].save(str(tmp_path)), ValueError,
            rf"^{tmp_path}: is a folder; save to a file in it, such as {tmp_path}/checkpoint.npz$")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [["sample", "--checkpoint", "a\x00b", "--out", "{tmp}/x.png"],
     ["train", "--steps", "b\x1b[31mred", "--out", "{tmp}/run"],
     ["train", "--dataset", "\u202eevil.npz", "--out", "{tmp}/run"]],
    ids=["checkpoint", "option-value", "dataset"],
)
def test_what_the_user_typed_is_echoed_escaped(tmp_path, capsys, argv):
    from tinygan.interfaces import cli

    try:
        code = cli.main([a.format(tmp=tmp_path) for a in argv])
    except SystemExit as e:  # the parser's own answer: usage, then the error line
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert not any(c in err for c in "\x00\x1b\u202e"), repr(err)
    assert err.strip().splitlines()[-1].startswith(f"tinygan {argv[0]}: error: ")
    assert any(s in err for s in ("a\\x00b", "b\\x1b[31mred", "\\u202eevil")), err


def test_api_errors_quote_what_they_were_given_escaped(tmp_path):
    from tinygan.interfaces.api import load_model

    message = refused(lambda: load_model(str(tmp_path / "a\x00b")), ValueError, r"a\\x00b")
    assert "\x00" not in message
    refused(lambda: load_model("x" * 5000), ValueError, r"^checkpoint x+: cannot read it \(File name too long\)$")
    refused(lambda: GAN.from_preset("default", data_shape=0), ValueError,
            r"^data_shape: expected a tuple of positive sizes such as \(28, 28\), got 0$")


def test_seeds_and_counts_are_checked_where_they_enter(tmp_path):
    from tinygan import load_dataset

    small = {"g_hidden": [8], "d_hidden": [8], "g_batchnorm": False}
    gan = GAN.from_preset("default", (8, 8), seed=np.int64(3), **small)
    gan.save(str(tmp_path / "g.npz"))  # the seed is saved as JSON
    assert GAN.load(str(tmp_path / "g.npz")).seed == 3
    for seed in (-1, 2.5, "1", True):
        refused(lambda seed=seed: GAN.from_preset("default", (8, 8), seed=seed, **small), ValueError,
                rf"^seed: expected an integer >= 0, got {seed!r}$")
        refused(lambda seed=seed: load_dataset("digits", n=10, seed=seed), DataError,
                rf"^seed must be an integer >= 0, got {seed!r}$")
    assert load_dataset("digits", n=np.int64(10), seed=np.int64(1)).x.shape == (10, 28, 28)
    refused(lambda: gan.fit(np.zeros((64, 8, 8), np.uint8), steps=1, callback=3), ValueError,
            r"^callback: expected a function of the progress, got 3$")
    assert gan.step == 0
    refused(lambda: load_dataset("x" * 5000), DataError, r"^x+: cannot read it \(File name too long\)$")
