"""Class-conditional GANs beyond the gradients: classes by name, labelled data, the API, pictures, metrics."""

from __future__ import annotations

import numpy as np
import pytest

import tinygan
from tinygan import GAN, GANConfig
from tinygan.data import FASHION_NAMES, load_dataset, write_idx
from tinygan.engine.layers import Dense, LeakyReLU, ProjectionHead
from tinygan.evaluation.metrics import conditional_metrics
from tinygan.evaluation.pictures import class_grid, interpolation
from tinygan.io.errors import DataError
from tinygan.models.classes import class_indices, names_problem, sample_labels, spread

pytestmark = pytest.mark.usefixtures("numpy_one_blas_thread")
SMALL = dict(g_hidden=[16], g_batchnorm=[True], d_hidden=[16], latent_dim=4, batch_size=16)


def _gan(form="projection", n_classes=3, **overrides) -> GAN:
    return GAN.from_preset("default", (4, 4), seed=0, n_classes=n_classes, conditioning=form, **{**SMALL, **overrides})


def _data(n=64, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 4, 4), dtype=np.uint8), rng.integers(0, k, n)


# -- classes by name -------------------------------------------------------------------------------


def test_classes_are_asked_for_by_name_or_number_case_insensitively():
    names = list(FASHION_NAMES)
    assert class_indices("sneaker", names) == [7]
    assert class_indices("ANKLE BOOT", names) == [9]
    assert class_indices(" Sneaker , bag", names) == [7, 8]
    assert class_indices("3,5", names) == [3, 5]  # numbers, where no name matches
    assert class_indices(["t-shirt/top", 4], names) == [0, 4]
    assert class_indices("3", ["a", "b", "c", "3"]) == [3]  # a name wins over a number
    with pytest.raises(ValueError, match=r"unknown class 'sneakers': expected one of T-shirt/top, Trouser, .* Bag, "
                                         r"Ankle boot \(or a class number 0\.\.9\)"):
        class_indices("sneakers", names)
    for wrong in ("10", "-1", True, 2.0):
        with pytest.raises(ValueError, match="unknown class"):
            class_indices([wrong], names)


def test_samples_spread_evenly_over_the_classes_asked_for():
    assert spread(7, [3, 5]).tolist() == [3, 3, 3, 3, 5, 5, 5]
    assert np.bincount(spread(1000, range(10))).tolist() == [100] * 10
    names = ["a", "b", "c"]
    assert sample_labels(4, None, names).tolist() == [0, 0, 1, 2]
    assert sample_labels(3, "B", names).tolist() == [1, 1, 1]
    assert sample_labels(3, ["c", 0, "1"], names).tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match=r"one class per sample \(3\), got 2"):
        sample_labels(3, [0, 1], names)


@pytest.mark.parametrize("names, problem", [
    (["a", "A"], "appears more than once"), (["a", ""], "empty"), (["a,b", "c"], "comma"), ("ab", "list of strings"),
])
def test_class_names_that_cannot_be_asked_for_are_refused(names, problem):
    assert problem in names_problem(names)
    with pytest.raises(ValueError, match=f"GAN config class_names = .*{problem}"):
        GANConfig(data_shape=(4,), n_classes=2, class_names=names)


def test_config_checks_of_a_conditional_gan():
    with pytest.raises(ValueError, match="n_classes = -1: expected a class count >= 0"):
        GANConfig(n_classes=-1)
    with pytest.raises(ValueError, match="conditioning = 'embed': expected one of concat, projection"):
        GANConfig(n_classes=2, conditioning="embed")
    with pytest.raises(ValueError, match="expected 3 names, one per class, got 2"):
        GANConfig(n_classes=3, class_names=["a", "b"])
    with pytest.raises(ValueError, match="set n_classes"):
        GANConfig(class_names=["a", "b"])
    with pytest.raises(ValueError, match="d_hidden = \\[\\]: the projection discriminator projects the features"):
        GANConfig(n_classes=2, d_hidden=[], d_batchnorm=False)


# -- labelled data ----------------------------------------------------------------------------------


def test_built_in_datasets_name_their_classes(tmp_path):
    assert load_dataset("digits", n=20).class_names == tuple("0123456789")
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", np.zeros((5, 28, 28), np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(5, dtype=np.uint8))
    ds = load_dataset("fashion-mnist", data_dir=folder, download=False)
    assert ds.class_names == FASHION_NAMES and ds.n_classes == 10 and ds.labels.tolist() == [0, 1, 2, 3, 4]


def test_a_labelled_npz_gives_samples_classes_and_names(tmp_path):
    x, y = _data(10)
    np.savez(tmp_path / "pets.npz", x=x, y=y, names=np.array(["cat", "dog", "fox"]))
    ds = load_dataset(str(tmp_path / "pets.npz"))
    assert ds.class_names == ("cat", "dog", "fox") and ds.labels.dtype == np.int64 and ds.sample_shape == (4, 4)
    np.testing.assert_array_equal(ds.labels, y)
    np.savez(tmp_path / "plain.npz", x=x, y=np.array([0, 4] * 5))
    plain = load_dataset(str(tmp_path / "plain.npz"))  # the classes that occur, named by their labels
    assert plain.class_names == ("0", "4") and plain.labels.tolist() == [0, 1] * 5


@pytest.mark.parametrize("arrays, message", [
    (dict(y=np.linspace(0, 2, 10)), "y: expected integer class labels, got float64 values"),
    (dict(y=np.zeros(9, np.int64)), r"y: expected one label per sample, shape \(10,\), got \(9,\)"),
    (dict(y=np.zeros((10, 1), np.int64)), r"y: expected one label per sample, shape \(10,\), got \(10, 1\)"),
    (dict(y=np.array([0] * 9 + [-2])), "y: label -2 at index 9 is negative"),
    (dict(y=np.array([0] * 9 + [3]), names=np.array(["a", "b", "c"])), r"y: label 3 at index 9 is outside 0\.\.2"),
    (dict(y=np.zeros(10, bool)), "y: expected integer class labels, got bool values"),
    (dict(y=np.zeros(10, np.int64), names=np.array(["a", "A"])), "names: class name 'a' appears more than once"),
    (dict(y=np.zeros(10, np.int64), names=np.array([1, 2])), "names: expected a 1-D array of strings"),
    (dict(y=np.zeros(10, np.int64), z=np.zeros(3)), "a labelled .npz holds x .* found x, y, z"),
    (dict(names=np.array(["a"])), "exactly one array, or x and y"),
])
def test_bad_labels_get_one_line_naming_the_file(tmp_path, arrays, message):
    x, _ = _data(10)
    path = tmp_path / "mine.npz"
    np.savez(path, x=x, **arrays)
    with pytest.raises(DataError, match=message) as info:
        load_dataset(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)


# -- the Python API ---------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["concat", "projection"])
def test_fit_with_labels_then_sample_chosen_classes_and_round_trip(tmp_path, form):
    x, y = _data()
    gan = _gan(form, class_names=["cat", "dog", "fox"])
    history = gan.fit(x, steps=6, log_every=3, y=y)
    assert len(history) == 2 and all(np.isfinite(r["d_loss"]) for r in history)
    z = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    foxes = gan.sample(3, z=z, labels="FOX")
    assert foxes.shape == (3, 4, 4) and 0 <= foxes.min() and foxes.max() <= 1
    np.testing.assert_array_equal(gan.sample(3, z=z, labels=[2, 2, 2]), foxes)
    assert not np.array_equal(gan.sample(3, z=z, labels=0), foxes)  # the class changes the image
    gan.save(str(tmp_path / "c.npz"))
    again = tinygan.GAN.load(str(tmp_path / "c.npz"))
    assert again.config.class_names == ["cat", "dog", "fox"] and again.config.conditioning == form
    np.testing.assert_array_equal(again.sample(3, z=z, labels="fox"), foxes)
    again.fit(x, steps=8, y=y)  # continues with its labels
    assert again.step == 8


def test_labels_are_required_by_a_conditional_gan_and_refused_by_others():
    x, y = _data()
    with pytest.raises(DataError, match=r"conditional model \(3 classes\) trains on labelled data: fit\(x, y=labels\)"):
        _gan().fit(x, steps=1)
    with pytest.raises(DataError, match="given to an unconditional model"):
        _gan(n_classes=0).fit(x, steps=1, y=y)
    with pytest.raises(DataError, match=r"training labels: label 3 at index \d+ is outside 0\.\.2"):
        _gan().fit(x, steps=1, y=y + 1)
    with pytest.raises(DataError, match="training labels: expected integer class labels, got float64"):
        _gan().fit(x, steps=1, y=y.astype(np.float64))
    with pytest.raises(DataError, match="training labels: expected a NumPy array"):
        _gan().fit(x, steps=1, y=list(y))
    with pytest.raises(ValueError, match="labels: this GAN is unconditional .* cannot generate a chosen class"):
        _gan(n_classes=0).sample(2, labels=1)
    with pytest.raises(ValueError, match="unknown class 'owl': expected one of 0, 1, 2"):
        _gan().sample(2, labels="owl")


def test_explicit_layers_of_a_projection_discriminator_must_end_in_its_head():
    config = GANConfig(data_shape=(3,), data_kind="points", latent_dim=2, g_output=None, batch_size=4, n_classes=2)
    gen = [Dense(4, 3)]  # z and the class's one-hot
    with pytest.raises(ValueError, match=r"must end in ProjectionHead\(features, 2\), got Dense"):
        GAN(config, generator=gen, discriminator=[Dense(3, 4), LeakyReLU(), Dense(4, 1)])
    with pytest.raises(ValueError, match="generator must map 4 → 3"):
        GAN(config, generator=[Dense(2, 3)], discriminator=[Dense(3, 4), LeakyReLU(), ProjectionHead(4, 2)])
    gan = GAN(config, generator=gen, discriminator=[Dense(3, 4), LeakyReLU(), ProjectionHead(4, 2)])
    assert gan.D.layers[-1].n_classes == 2


# -- pictures ---------------------------------------------------------------------------------------


def test_the_class_grid_holds_each_latent_down_its_column():
    x, y = _data()
    gan = _gan()
    gan.fit(x, steps=3, y=y)
    z = np.random.default_rng(2).standard_normal((4, 4)).astype(np.float32)
    grid = class_grid(gan, z).reshape(3, 4, 4, 4)  # rows = classes, columns = latents
    for k in range(3):
        for j in range(4):  # one row or twelve: BLAS may sum in another order (float32 rounding, not another latent)
            np.testing.assert_allclose(grid[k, j], gan.sample(1, z=z[j : j + 1], labels=[k])[0], atol=1e-6)


@pytest.mark.parametrize("conditional", [False, True])
def test_interpolation_rows_walk_between_their_end_latents(conditional):
    from tinygan.models.latents import seeded_latents

    gan = _gan(n_classes=3 if conditional else 0)
    rows = interpolation(gan, rows=4, steps=5, seed=3).reshape(4, 5, 4, 4)
    ends = seeded_latents(8, 4, 3)
    labels = {"labels": [0, 1, 2, 0]} if conditional else {}
    np.testing.assert_allclose(rows[:, 0], gan.sample(4, z=ends[:4], **labels), atol=1e-6)
    np.testing.assert_allclose(rows[:, -1], gan.sample(4, z=ends[4:], **labels), atol=1e-6)
    assert not np.allclose(rows[:, 2], rows[:, 0])


def test_a_vae_interpolates_too():
    vae = tinygan.VAE.from_preset("vae", (4, 4), seed=0, latent_dim=3, enc_hidden=[8], dec_hidden=[8])
    assert interpolation(vae, rows=2, steps=3).shape == (6, 4, 4)


# -- metrics ----------------------------------------------------------------------------------------


def test_conditional_metrics_of_samples_that_fit_their_classes_and_of_others():
    rng = np.random.default_rng(0)
    labels, test_labels = np.repeat(np.arange(3), 200), np.repeat(np.arange(3), 300)
    centres = 5.0 * rng.standard_normal((3, 4))
    fake = centres[labels] + rng.standard_normal((600, 4))
    real = centres[test_labels] + rng.standard_normal((900, 4))
    right = np.eye(3)[labels]
    result = conditional_metrics(fake, right, labels, real, test_labels)
    assert result["conditional_accuracy"] == 1.0 and len(result["fd_per_class"]) == 3
    assert max(result["fd_per_class"]) < 0.5
    assert result["fd_class_mean"] == pytest.approx(np.mean(result["fd_per_class"]))
    shifted = conditional_metrics(centres[(labels + 1) % 3] + rng.standard_normal((600, 4)), np.roll(right, 1, axis=1),
                                  labels, real, test_labels)
    assert shifted["conditional_accuracy"] == 0.0 and min(shifted["fd_per_class"]) > 10
    assert all(0 <= fd < 0.5 for fd in result["fd_per_class_real_floor"])
    few = conditional_metrics(fake[:1], right[:1], labels[:1], real[:3], test_labels[:3])
    assert few["fd_per_class"] == [None, None, None] and few["fd_class_mean"] is None
    assert few["fd_per_class_real_floor"] == [None, None, None]  # 3 images of class 0: halves of 2 and 1
