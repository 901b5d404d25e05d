"""The VAE as a model and as a run: its step lowers −ELBO, sampling and evaluation leave training alone,
checkpoints round-trip and resume exactly, and the command line trains, samples, reconstructs and
evaluates it like a GAN, with what a VAE adds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinygan import GAN, VAE, CheckpointError, VAEConfig, load_dataset
from tinygan.data import Dataset, make_digits
from tinygan.evaluation import evaluate
from tinygan.evaluation.evaluate import TrainSettings
from tinygan.evaluation.pictures import comparison_grid, corrupt
from tinygan.interfaces import cli, sample_command, train_command
from tinygan.io.errors import DataError
from tinygan.io.png import read_png
from tinygan.training import run_record

pytestmark = pytest.mark.usefixtures("numpy_one_blas_thread")


def tiny(**overrides) -> VAE:
    settings = dict(data_shape=(6,), latent_dim=2, enc_hidden=[16], dec_hidden=[16], batch_size=16)
    return VAE(VAEConfig(**{**settings, **overrides}), backend="numpy", seed=1)


def _images(n=64, d=6, seed=0):
    return np.random.default_rng(seed).random((n, d)).astype(np.float32)


def test_a_step_lowers_the_loss_on_its_batch():
    vae = tiny()
    x, eps = _images(16), np.random.default_rng(1).standard_normal((16, 2)).astype(np.float32)
    before = {k: float(v) for k, v in vae.gradients(x, eps).items()}
    metrics = vae.train_step(x, eps)
    assert float(metrics["neg_elbo"]) == pytest.approx(before["neg_elbo"], rel=1e-6)  # reported: before the update
    assert float(vae.gradients(x, eps)["neg_elbo"]) < before["neg_elbo"]
    assert vae.step == 1 and vae.opt_enc.steps == 1 and vae.opt_dec.steps == 1


def test_fit_learns_and_records_the_two_terms():
    vae = tiny()
    history = vae.fit(_images(256), steps=60, log_every=20)
    assert [r["step"] for r in history] == [20, 40, 60]
    for r in history:
        assert r["neg_elbo"] == pytest.approx(r["recon"] + r["kl"], rel=1e-5) and r["kl"] >= 0
    assert history[-1]["neg_elbo"] < history[0]["neg_elbo"]


def test_sampling_reconstructing_and_scoring_leave_training_state_alone():
    x = _images(64)
    plain, used = tiny(), tiny()
    plain.fit(x, steps=4, batch_size=8)
    used.fit(x, steps=2, batch_size=8)
    used.sample(5), used.reconstruct(x[:3]), used.elbo(x[:9])
    used.fit(x, steps=4, batch_size=8)
    for name in ("enc", "dec"):
        np.testing.assert_array_equal(plain.nets[name].params, used.nets[name].params)


def test_outputs_have_the_data_shape_and_range():
    vae = VAE.from_preset("vae", (4, 4), "numpy", 0, enc_hidden=[8], dec_hidden=[8], latent_dim=3)
    images = (np.random.default_rng(0).random((20, 4, 4)) * 255).astype(np.uint8)
    for out in (vae.sample(7), vae.reconstruct(images[:7])):
        assert out.shape == (7, 4, 4) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    scores = vae.elbo(images, batch=6)
    assert scores["elbo_n"] == 20 and scores["neg_elbo"] == pytest.approx(scores["recon"] + scores["kl"])
    again = vae.elbo(images.astype(np.float32) / 255, batch=20)  # batching and dtype do not change it
    assert again["neg_elbo"] == pytest.approx(scores["neg_elbo"], rel=1e-5)
    points = VAE.from_preset("vae", (2,), "numpy", 0)
    assert points.config.latent_dim == 2 and points.config.x_std == 0.05  # vae-points for 2-D data
    assert points.sample(3).shape == (3, 2)


def test_save_load_round_trip_and_exact_resume(tmp_path):
    x = _images(64)
    whole = tiny()
    whole.fit(x, steps=9, batch_size=8)
    part = tiny()
    part.fit(x, steps=5, batch_size=8)
    part.save(str(tmp_path / "c.npz"))
    back = VAE.load(str(tmp_path / "c.npz"))
    assert back.step == 5 and back.config == part.config
    back.fit(x, steps=9, batch_size=8)
    a, b = whole.state()[0], back.state()[0]
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a), "resume is exact"
    with pytest.raises(CheckpointError, match="holds a 'vae' model, expected gan"):
        GAN.load(str(tmp_path / "c.npz"))


def test_bad_configs_are_named():
    with pytest.raises(ValueError, match="VAE config latent_dim = 0"):
        VAEConfig(latent_dim=0)
    with pytest.raises(ValueError, match="unknown VAE config keys: 'g_hidden'"):
        VAEConfig.from_json({"g_hidden": [3]})
    with pytest.raises(ValueError, match="encoder must map 6 → 4 features"):
        tiny(latent_dim=2).__class__(tiny().config, encoder=[__import__("tinygan").Dense(6, 3)])


def test_corruption_and_the_comparison_grid():
    x = np.full((10, 4, 4), 0.5, np.float32)
    assert np.array_equal(corrupt(x, 0.0), x)
    noisy = corrupt(x, 0.5, seed=1)
    changed = noisy != 0.5
    assert 0.35 < changed.mean() < 0.65 and set(np.unique(noisy[changed])) == {0.0, 1.0}
    grid = comparison_grid([np.zeros((3, 4, 4)), np.ones((3, 4, 4))], (4, 4), ncols=2)
    assert grid.shape == (4 * 4 + 5 * 2, 2 * 4 + 3 * 2)  # rows: originals, reconstructions, twice
    assert grid[2:6, 2:6].max() == 0 and grid[8:12, 2:6].min() == 255  # an original above its reconstruction


# -- the command line ------------------------------------------------------------------------------

TINY = ["--n-train", "256", "--batch-size", "32", "--enc-hidden", "32", "--dec-hidden", "32", "--latent-dim", "4"]


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> Path:
    """A VAE run on a small stand-in for digits, so that the judge of its metrics trains quickly."""
    tmp = tmp_path_factory.mktemp("vae")
    x, y = make_digits(1200, seed=11)

    def fake_load(name, data_dir=None, split="train", n=None, **_):
        xs, ys = (x[:1000], y[:1000]) if split == "train" else (x[1000:], y[1000:])
        return Dataset("digits", xs[:n], ys[:n], "image", (0.0, 255.0))

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp / "cache"))
        for module in (evaluate, train_command, run_record, sample_command):
            mp.setattr(module, "load_dataset", fake_load)
        mp.setattr(evaluate, "TrainSettings", lambda: TrainSettings(epochs=1, batch_size=100))
        assert cli.main(["train", "--model", "vae", *TINY, "--steps", "20", "--log-every", "10", "--eval-every",
                         "10", "--out", str(tmp / "run")]) == 0  # fmt: skip
    return tmp / "run"


def test_a_vae_run_folder(vae_run, capsys):
    names = {p.name for p in vae_run.iterdir()}
    assert names == {"samples.png", "reconstructions.png", "metrics.jsonl", "config.json", "checkpoint.npz",
                     "eval.json", ".tinygan-run"}  # fmt: skip
    records = [json.loads(line) for line in (vae_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 10, 20, 20]  # metrics, then the FD point, at each interval
    assert {"neg_elbo", "recon", "kl", "steps_per_s", "epoch"} <= set(records[0]) and "fd" in records[1]
    assert json.loads((vae_run / "config.json").read_text())["run"]["model"] == "vae"
    scores = json.loads((vae_run / "eval.json").read_text())
    assert {"fd", "classes_covered", "cis", "neg_elbo", "recon", "kl"} <= set(scores)
    assert scores["neg_elbo"] == pytest.approx(scores["recon"] + scores["kl"]) and scores["elbo_n"] == 200
    side = 10 * 28 + 11 * 2
    assert read_png(vae_run / "reconstructions.png").shape == (6 * 28 + 7 * 2, side)  # 30 originals + 30
    assert read_png(vae_run / "samples.png").shape == (side, side)


def test_sample_reconstruct_and_eval_from_the_command_line(vae_run, tmp_path, capsys):
    out = tmp_path / "r.npy"
    assert cli.main(["sample", "--checkpoint", str(vae_run), "--reconstruct", "digits", "-n", "12",
                     "--noise", "0.2", "--out", str(out)]) == 0  # fmt: skip
    assert "reconstructions of 12 images corrupted with noise 0.2" in capsys.readouterr().err
    recon = np.load(out)
    assert recon.shape == (12, 28, 28) and 0 <= recon.min() and recon.max() <= 1
    images = load_dataset("digits", split="test", n=12).x
    np.save(tmp_path / "mine.npy", images)
    png = tmp_path / "r.png"
    assert cli.main(["sample", "--checkpoint", str(vae_run), "--reconstruct", str(tmp_path / "mine.npy"),
                     "--noise", "0.2", "-n", "12", "--out", str(png)]) == 0  # fmt: skip
    assert read_png(png).shape == (2 * 3 * 28 + 7 * 2, 10 * 28 + 11 * 2)  # clean, noisy, reconstructed, twice
    assert cli.main(["sample", "--checkpoint", str(vae_run), "-n", "5", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (5, 28, 28)


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--model", "vae", "--g-hidden", "8"], "--g-hidden: a GAN option, not one of --model vae"),
    (["train", "--model", "default", "--enc-hidden", "8"], "--enc-hidden: a VAE option, not one of --model default"),
    (["sample", "--checkpoint", "RUN", "--noise", "0.1", "--out", "x.png"], "--noise: corrupts the images given"),
    (["sample", "--checkpoint", "RUN", "--reconstruct", "x.npy", "--out", "x.png"], "x.npy: file not found"),
    (["sample", "--checkpoint", "RUN", "--reconstruct", "ring", "--out", "x.png"],
     "--reconstruct ring: expected shape (N, 28, 28)"),
])
def test_vae_usage_errors_are_one_line(vae_run, tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    argv = [str(vae_run) if a == "RUN" else a for a in argv]
    assert cli.main([*argv, "--out", "o"] if argv[0] == "train" else argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err.replace(str(tmp_path) + "/", ""), err


def test_reconstruct_needs_an_encoder(tmp_path, capsys):
    gan = GAN.from_preset("reference", (28, 28), g_hidden=[8], d_hidden=[8], latent_dim=2, g_batchnorm=False)
    gan.save(str(tmp_path / "g.npz"))
    assert cli.main(["sample", "--checkpoint", str(tmp_path / "g.npz"), "--reconstruct", "digits",
                     "--out", str(tmp_path / "x.png")]) == 2  # fmt: skip
    assert "holds a GAN, which has no encoder" in capsys.readouterr().err


def test_a_vae_run_resumes_to_the_same_model(tmp_path):
    args = ["train", "--model", "vae", "--dataset", "ring", "--n-train", "400", "--enc-hidden", "8",
            "--dec-hidden", "8", "--checkpoint-every", "5", "--no-eval"]  # fmt: skip
    assert cli.main([*args, "--steps", "12", "--out", str(tmp_path / "whole")]) == 0
    assert cli.main([*args, "--steps", "5", "--out", str(tmp_path / "part")]) == 0
    assert cli.main(["train", "--resume", str(tmp_path / "part"), "--steps", "12", "--lr", "1e-3"]) == 0
    a, b = (VAE.load(str(tmp_path / name / "checkpoint.npz")) for name in ("whole", "part"))
    assert a.step == b.step == 12 and json.loads((tmp_path / "part" / "config.json").read_text())["run"]["model"] \
        == "vae-points"
    for name in ("enc", "dec"):
        np.testing.assert_array_equal(a.nets[name].params, b.nets[name].params)


def test_a_vae_given_labels_says_it_trains_without_them():
    vae = VAE.from_preset("vae", (8, 8), seed=0, latent_dim=3, enc_hidden=[16], dec_hidden=[16], batch_size=4)
    with pytest.raises(DataError, match=r"^training labels: a VAE trains without class labels; call fit\(x\)"):
        vae.fit(np.zeros((8, 8, 8), np.uint8), y=np.zeros(8, np.int64), steps=1)
