"""Tests for tinygan.evaluation.evaluate: metric code on constructed cases with known answers, the judging
classifier (quickly, on a small digits subset) and evaluate_model end to end on tiny models."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygan import GAN
from tinygan.data import make_digits, mixture_modes
from tinygan.evaluation import evaluate
from tinygan.evaluation.evaluate import Classifier, TrainSettings, evaluate_model, load_or_train_classifier
from tinygan.evaluation.metrics import (
    class_metrics,
    classifier_inception_score,
    frechet_distance,
    kl_divergence,
    mode_metrics,
)

# --------------------------------------------------------------------------- 2-D mode metrics


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_all_samples_on_one_mode(name):
    modes, std = mixture_modes(name)
    x = np.repeat(modes[3:4], 2500, axis=0) + 0.5 * std * np.random.default_rng(0).standard_normal((2500, 2))
    m = mode_metrics(x, modes, std)
    assert m["modes"] == 1 and m["modes_total"] == len(modes)
    assert m["hq_percent"] == pytest.approx(100.0)
    # KL(p ‖ uniform) with all mass on one of K modes is log K.
    assert m["reverse_kl"] == pytest.approx(math.log(len(modes)))
    assert m["mode_counts"][3] == 2500


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_perfect_samples(name):
    modes, std = mixture_modes(name)
    rng = np.random.default_rng(1)
    x = np.repeat(modes, 100, axis=0) + std * rng.standard_normal((100 * len(modes), 2))
    m = mode_metrics(x, modes, std)
    assert m["modes"] == len(modes)
    # Real data: a 2-D Gaussian puts 1 − exp(−9/2) ≈ 98.9% of its mass within 3σ.
    assert m["hq_percent"] > 97.0
    assert m["reverse_kl"] == pytest.approx(0.0, abs=0.01)


def test_exact_mode_centres_give_zero_reverse_kl():
    modes, std = mixture_modes("grid")
    m = mode_metrics(np.tile(modes, (4, 1)), modes, std)
    assert m == {
        "modes": 25,
        "modes_total": 25,
        "hq_percent": 100.0,
        "reverse_kl": 0.0,
        "mode_counts": [4] * 25,
    }


def test_half_the_modes_equally_filled():
    modes, std = mixture_modes("ring")
    m = mode_metrics(np.tile(modes[:4], (10, 1)), modes, std)
    assert m["modes"] == 4
    assert m["reverse_kl"] == pytest.approx(math.log(2.0))  # log(K / m)


def test_uniform_noise_is_low_quality():
    modes, std = mixture_modes("grid")
    x = np.random.default_rng(2).uniform(-5, 5, size=(2500, 2))
    m = mode_metrics(x, modes, std)
    # Area within 3σ of the 25 centres: 25 π (0.15)² ≈ 1.8 of 100 → under 2% expected.
    assert m["hq_percent"] < 4.0


def test_no_high_quality_sample_has_no_reverse_kl():
    modes, std = mixture_modes("ring")
    m = mode_metrics(np.full((10, 2), 5.0), modes, std)
    assert m["modes"] == 0 and m["hq_percent"] == 0.0 and m["reverse_kl"] is None


def test_kl_divergence():
    assert kl_divergence([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert kl_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(math.log(2))
    assert kl_divergence([0.25, 0.75], [0.5, 0.5]) == pytest.approx(
        0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    )
    with pytest.raises(ValueError):
        kl_divergence([0.5, 0.5], [1.0, 0.0])


# --------------------------------------------------------------------------- Fréchet distance


def test_fd_of_identical_sets_is_zero():
    f = np.random.default_rng(3).standard_normal((500, 16)) @ np.random.default_rng(4).standard_normal(
        (16, 16)
    )
    assert frechet_distance(f, f) == pytest.approx(0.0, abs=1e-6)


def test_fd_of_shifted_sets_is_squared_shift():
    f = np.random.default_rng(5).standard_normal((400, 8))
    shift = np.arange(8, dtype=np.float64)
    # Same covariance: the trace term vanishes and FD = ‖μ₁ − μ₂‖².
    assert frechet_distance(f, f + shift) == pytest.approx(float(shift @ shift), rel=1e-6)


def test_fd_of_gaussians_matches_closed_form():
    # N(μ₁, a²I) vs N(μ₂, b²I) in F dims: FD = ‖μ₁ − μ₂‖² + F (a − b)².
    rng = np.random.default_rng(6)
    f, a, b = 4, 1.0, 3.0
    x1 = a * rng.standard_normal((200_000, f))
    x2 = 1.0 + b * rng.standard_normal((200_000, f))
    assert frechet_distance(x1, x2) == pytest.approx(f * 1.0 + f * (a - b) ** 2, rel=0.02)


def test_fd_with_non_commuting_covariances():
    # Diagonal S₁ and a rotated S₂: the symmetric formula must equal tr(S₁+S₂−2(S₁S₂)^{1/2}).
    s1 = np.diag([4.0, 1.0])
    c, s = math.cos(0.7), math.sin(0.7)
    r = np.array([[c, -s], [s, c]])
    s2 = r @ np.diag([9.0, 0.25]) @ r.T
    rng = np.random.default_rng(7)
    x1 = rng.multivariate_normal([0, 0], s1, size=400_000)
    x2 = rng.multivariate_normal([0, 0], s2, size=400_000)
    w, v = np.linalg.eig(s1 @ s2)  # reference: (S₁S₂)^{1/2} through its (real, positive) eigenvalues
    expected = np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(w.real))
    assert frechet_distance(x1, x2) == pytest.approx(expected, rel=0.03)


# --------------------------------------------------------------------------- class metrics and IS


def _onehot(classes: np.ndarray, k: int = 10) -> np.ndarray:
    return np.eye(k)[classes]


def test_inception_score_extremes():
    assert classifier_inception_score(_onehot(np.arange(1000) % 10)) == pytest.approx(10.0)
    assert classifier_inception_score(_onehot(np.zeros(1000, int))) == pytest.approx(1.0)
    assert classifier_inception_score(np.full((50, 10), 0.1)) == pytest.approx(1.0)  # unsure everywhere


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 10), st.integers(2, 10))
def test_inception_score_of_m_confident_classes(m, k):
    m = min(m, k)
    assert classifier_inception_score(_onehot(np.arange(60 * m) % m, k)) == pytest.approx(float(m))


def test_class_metrics_balanced_and_collapsed():
    ref = np.full(10, 0.1)
    balanced = class_metrics(_onehot(np.arange(1000) % 10), ref)
    assert balanced["classes_covered"] == 10
    assert balanced["max_class_share"] == pytest.approx(0.1)
    assert balanced["class_kl"] == pytest.approx(0.0, abs=1e-12)
    assert balanced["cis"] == pytest.approx(10.0)
    collapsed = class_metrics(_onehot(np.full(1000, 7)), ref)
    assert collapsed["classes_covered"] == 1
    assert collapsed["max_class_share"] == 1.0
    assert collapsed["class_kl"] == pytest.approx(math.log(10))
    assert collapsed["cis"] == pytest.approx(1.0)


def test_class_coverage_threshold():
    # 1% of samples (a tenth of the 10% reference) counts as covered; 0.5% does not.
    classes = np.concatenate([np.full(10, 0), np.full(5, 1), np.full(985, 2)])
    m = class_metrics(_onehot(classes), np.full(10, 0.1))
    assert m["classes_covered"] == 2


# --------------------------------------------------------------------------- the classifier


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    """Keep classifier caches out of the real user cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def small_digits():
    x, y = make_digits(1200, seed=11)
    return x[:1000], y[:1000], x[1000:], y[1000:]


def test_classifier_learns_digits_and_is_cached(small_digits, cache_home, monkeypatch):
    x, y, xt, yt = small_digits
    quick = TrainSettings(epochs=3, batch_size=50, lr=2e-3)
    clf = load_or_train_classifier("digits", x, y, settings=quick, verbose=False)
    acc = clf.accuracy(xt, yt)
    assert acc > 0.5  # chance is 0.1
    assert clf.features(xt[:7]).shape == (7, 128)
    p = clf.probs(xt[:7])
    assert p.shape == (7, 10) and np.allclose(p.sum(axis=1), 1.0)
    assert (cache_home / "tinygan" / "digits" / "classifier.npz").is_file()

    # A second call with the same data loads the cache instead of training.
    monkeypatch.setattr(Classifier, "fit", lambda *a, **k: pytest.fail("retrained despite a valid cache"))
    again = load_or_train_classifier("digits", x, y, settings=quick, verbose=False)
    assert again.accuracy(xt, yt) == acc


def test_classifier_cache_is_keyed_by_the_data(small_digits, cache_home):
    x, y, _, _ = small_digits
    quick = TrainSettings(epochs=1, batch_size=100)
    load_or_train_classifier("digits", x[:300], y[:300], settings=quick, verbose=False)
    trained = []
    original = Classifier.fit

    def spy(self, *args, **kwargs):
        trained.append(True)
        return original(self, *args, **kwargs)

    Classifier.fit = spy
    try:
        load_or_train_classifier("digits", x[:301], y[:301], settings=quick, verbose=False)
    finally:
        Classifier.fit = original
    assert trained == [True]


def test_damaged_cache_is_replaced(small_digits, cache_home):
    x, y, _, _ = small_digits
    path = cache_home / "tinygan" / "digits" / "classifier.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    clf = load_or_train_classifier(
        "digits", x[:200], y[:200], settings=TrainSettings(epochs=1), verbose=False
    )
    assert clf.n_classes == 10 and path.stat().st_size > 1000


def test_image_metrics_of_real_images_are_near_the_floor(small_digits, cache_home):
    x, y, xt, _ = small_digits
    clf = load_or_train_classifier(
        "digits", x, y, settings=TrainSettings(epochs=2, batch_size=50), verbose=False
    )
    real = evaluate.judge_images(clf, x[:400].astype(np.float32) / 255.0, xt)
    noise = evaluate.judge_images(clf, np.random.default_rng(0).random((400, 28, 28), np.float32), xt)
    assert real["fd"] < noise["fd"]
    assert set(real) >= {
        "fd",
        "fd_real_floor",
        "classes_covered",
        "max_class_share",
        "class_kl",
        "cis",
        "real",
    }
    assert real["real"]["fd"] == real["fd_real_floor"]
    json.dumps(real)


# --------------------------------------------------------------------------- evaluate_model


def test_evaluate_model_on_points():
    gan = GAN.from_preset("points", (2,), seed=0, g_hidden=[8], d_hidden=[8])
    result = evaluate_model(gan, n=300, dataset="ring")
    assert result["n"] == 300 and result["modes_total"] == 8
    assert {"modes", "hq_percent", "reverse_kl"} <= set(result)
    assert json.loads(json.dumps(result)) == result
    # The dataset name may come from the GAN itself; without any name there is nothing to measure.
    gan.dataset_name = "grid"
    assert evaluate_model(gan, n=300)["modes_total"] == 25
    del gan.dataset_name
    assert evaluate_model(gan, n=300) is None
    assert evaluate_model(gan, n=300, dataset="some-user-file") is None


def test_evaluate_model_on_digits(cache_home, monkeypatch, small_digits):
    # Stand-in digits split (small) so the test stays fast; the real path loads 60,000 images.
    x, y, xt, yt = small_digits
    from tinygan.data import Dataset

    def fake_load(name, data_dir=None, split="train", **_):
        xs, ys = (x, y) if split == "train" else (xt, yt)
        return Dataset("digits", xs, ys, "image", (0.0, 255.0))

    monkeypatch.setattr(evaluate, "load_dataset", fake_load)
    monkeypatch.setattr(evaluate, "TrainSettings", lambda: TrainSettings(epochs=1, batch_size=100))
    gan = GAN.from_preset("reference", (28, 28), seed=0, g_hidden=[16], g_batchnorm=False, d_hidden=[16])
    result = evaluate_model(gan, n=200, dataset="digits")
    assert result["n"] == 200 and result["dataset"] == "digits"
    assert 1 <= result["classes_covered"] <= 10 and 0 < result["max_class_share"] <= 1
    assert result["cis"] >= 1.0 and result["fd"] >= 0.0
    json.dumps(result)


def test_pack_widens_the_discriminator_input():
    gan = GAN.from_preset("points", (2,), seed=0, pack=2)
    assert gan.D.layers[0].n_in == 4
    with pytest.raises(ValueError):
        GAN.from_preset("points", (2,), seed=0, pack=3)  # batch 100 is not a multiple of 3
    x = np.random.default_rng(0).standard_normal((400, 2)).astype(np.float32)
    history = gan.fit(x, steps=3, log_every=1)
    assert len(history) == 3 and all(math.isfinite(r["d_loss"]) for r in history)


def test_eval_command_prints_the_metrics_of_the_checkpoints_dataset(tmp_path, capsys):
    from tinygan.interfaces.cli import main

    gan = GAN.from_preset("points", (2,), seed=0, g_hidden=[8], d_hidden=[8])
    gan.dataset_name = "ring"
    gan.save(str(tmp_path / "checkpoint.npz"))
    assert main(["eval", "--checkpoint", str(tmp_path / "checkpoint.npz"), "--n", "100"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dataset"] == "ring" and result["n"] == 100 and result["modes_total"] == 8


def test_train_records_the_fd_curve_in_metrics(cache_home, monkeypatch, small_digits, tmp_path):
    # `train --eval-every N` writes {"step", "fd"} records; stand-in data keeps the judge quick.
    x, y, xt, yt = small_digits
    from tinygan import data
    from tinygan.data import Dataset
    from tinygan.interfaces import cli, train_command

    def fake_load(name, data_dir=None, split="train", **_):
        xs, ys = (x, y) if split == "train" else (xt, yt)
        return Dataset("digits", xs, ys, "image", (0.0, 255.0))

    monkeypatch.setattr(evaluate, "load_dataset", fake_load)
    monkeypatch.setattr(train_command, "load_dataset", fake_load)
    monkeypatch.setattr(data, "load_dataset", fake_load)
    monkeypatch.setattr(evaluate, "TrainSettings", lambda: TrainSettings(epochs=1, batch_size=100))
    run = tmp_path / "run"
    code = cli.main([
        "train", "--steps", "20", "--eval-every", "10", "--out", str(run), "--batch-size", "32",
        "--g-hidden", "16", "--g-batchnorm", "no", "--d-hidden", "16",
    ])
    assert code == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    curve = [r for r in records if "fd" in r]
    assert [r["step"] for r in curve] == [10, 20]
    assert all(np.isfinite(r["fd"]) and r["fd"] > 0 for r in curve)
    assert json.loads((run / "eval.json").read_text())["dataset"] == "digits"
