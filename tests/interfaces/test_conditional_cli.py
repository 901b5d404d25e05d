"""Class-conditional GANs through ``python -m tinygan``: train --conditional, sample --class and
--interpolate, eval's conditional accuracy, and one-line errors for what cannot be done."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinygan import GAN, VAE
from tinygan.data import Dataset
from tinygan.evaluation import evaluate
from tinygan.evaluation.evaluate import TrainSettings
from tinygan.interfaces import cli
from tinygan.io.png import read_png

pytestmark = pytest.mark.usefixtures("numpy_one_blas_thread")
TINY = ["--n-train", "256", "--batch-size", "32", "--g-hidden", "16", "--d-hidden", "16", "--latent-dim", "4",
        "--no-eval"]
TILE = 28 + 2  # a grid tile and its padding


def tinygan(capsys, *args):
    """``(exit status, stderr)`` of ``python -m tinygan ARGS``, run in this process."""
    code = cli.main([str(a) for a in args])
    return code, capsys.readouterr().err


def _one_line_error(code, err, *parts):
    """Exit status 2 and one error line (after any progress lines), naming what was wrong."""
    assert code == 2, err
    errors = [line for line in err.strip().splitlines() if line.startswith("tinygan ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    line = errors[0]
    for part in parts:
        assert part in line, line


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A conditional run on the digits (projection form, the default)."""
    folder = tmp_path_factory.mktemp("cond") / "run"
    assert cli.main(["train", "--conditional", *TINY, "--steps", "12", "--out", str(folder)]) == 0
    return folder


def test_train_conditional_writes_a_class_grid(run):
    config = json.loads((run / "config.json").read_text())
    assert config["run"]["conditional"] is True
    assert config["model"]["n_classes"] == 10 and config["model"]["class_names"] == list("0123456789")
    assert read_png(run / "samples.png").shape == (10 * TILE + 2, 10 * TILE + 2)  # a row per class, 10 latents
    assert GAN.load(str(run / "checkpoint.npz")).config.conditioning == "projection"


def test_sample_chosen_classes(run, tmp_path, capsys):
    code, err = tinygan(capsys, "sample", "--checkpoint", run, "--class", "7", "-n", "5", "--out", tmp_path / "a.npy")
    assert code == 0 and "wrote 5 samples" in err
    sevens = np.load(tmp_path / "a.npy")
    assert sevens.shape == (5, 28, 28)
    gan = GAN.load(str(run / "checkpoint.npz"))
    from tinygan.models.latents import seeded_latents

    np.testing.assert_array_equal(sevens, gan.sample(5, z=seeded_latents(5, 4, 0), labels=7))
    code, _ = tinygan(capsys, "sample", "--checkpoint", run, "--class", "3,5", "-n", "8", "--out", tmp_path / "b.png")
    assert code == 0
    assert read_png(tmp_path / "b.png").shape == (2 * TILE + 2, 4 * TILE + 2)  # a row per class
    assert tinygan(capsys, "sample", "--checkpoint", run, "-n", "20", "--out", tmp_path / "c.png")[0] == 0
    assert read_png(tmp_path / "c.png").shape == (10 * TILE + 2, 2 * TILE + 2)  # every class, two of each


def test_an_unknown_class_lists_the_valid_names(run, tmp_path, capsys):
    code, err = tinygan(capsys, "sample", "--checkpoint", run, "--class", "3,x", "--out", tmp_path / "a.png")
    _one_line_error(code, err, "--class 3,x: unknown class 'x': expected one of 0, 1, 2, 3, 4, 5, 6, 7, 8, 9")


@pytest.mark.parametrize("out, shape", [("walk.png", (3 * TILE + 2, 6 * TILE + 2)), ("walk.npy", (3, 6, 28, 28))])
def test_interpolate_draws_rows_of_walks(run, tmp_path, capsys, out, shape):
    code, err = tinygan(capsys, "sample", "--checkpoint", run, "--interpolate", "6", "-n", "3", "--class", "1,2",
                        "--out", tmp_path / out)
    assert code == 0 and "3 interpolations of 6 steps" in err
    got = read_png(tmp_path / out) if out.endswith(".png") else np.load(tmp_path / out)
    assert got.shape == shape


def test_interpolate_any_model(tmp_path, capsys):
    for model in (GAN.from_preset("default", (28, 28), g_hidden=[8], g_batchnorm=False, d_hidden=[8], latent_dim=3),
                  VAE.from_preset("vae", (28, 28), enc_hidden=[8], dec_hidden=[8], latent_dim=3)):
        model.save(str(tmp_path / "c.npz"))
        assert tinygan(capsys, "sample", "--checkpoint", tmp_path / "c.npz", "--interpolate", "4",
                       "--out", tmp_path / "w.png")[0] == 0
        assert read_png(tmp_path / "w.png").shape == (8 * TILE + 2, 4 * TILE + 2)  # 8 rows by default


def test_what_cannot_be_sampled_is_one_line(run, tmp_path, capsys):
    plain = tmp_path / "plain.npz"
    GAN.from_preset("default", (28, 28), g_hidden=[8], g_batchnorm=False, d_hidden=[8], latent_dim=3).save(str(plain))
    code, err = tinygan(capsys, "sample", "--checkpoint", plain, "--class", "7", "--out", tmp_path / "a.png")
    _one_line_error(code, err, "--class:", "holds an unconditional model (trained without --conditional)")
    code, err = tinygan(capsys, "sample", "--checkpoint", run, "--interpolate", "200", "-n", "51", "--out",
                        tmp_path / "a.png")
    _one_line_error(code, err, "-n 51 --interpolate 200: 10200 images, more than the 10000")
    code, err = tinygan(capsys, "sample", "--checkpoint", run, "--class", "7", "--reconstruct", "digits", "--out",
                        tmp_path / "a.png")
    _one_line_error(code, err, "--class: draws new samples; it does not go with --reconstruct")
    with pytest.raises(SystemExit) as info:
        cli.main(["sample", "--checkpoint", str(run), "--interpolate", "1", "--out", str(tmp_path / "a.png")])
    assert info.value.code == 2 and "expected an integer of at least 2, got 1" in capsys.readouterr().err


def test_what_cannot_be_trained_is_one_line(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((256, 4, 4), np.uint8))
    cases = [
        (["--conditional", "--dataset", tmp_path / "x.npy"], "--conditional: dataset x has no class labels"),
        (["--conditioning", "concat"], "--conditioning: chooses how a conditional GAN's D sees the class; "
                                       "add --conditional"),
        (["--conditional", "--model", "vae"], "--conditional: a GAN option, not one of --model vae"),
    ]
    for i, (args, message) in enumerate(cases):
        out = tmp_path / f"r{i}"
        code, err = tinygan(capsys, "train", "--n-train", "256", "--no-eval", "--steps", "2", "--out", out, *args)
        _one_line_error(code, err, message)
        assert not out.exists()


def test_a_labelled_npz_trains_and_samples_by_name(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "pets.npz", x=rng.integers(0, 256, (256, 8, 8), dtype=np.uint8), y=rng.integers(0, 3, 256),
             names=np.array(["cat", "dog", "Fox"]))
    run = tmp_path / "run"
    assert tinygan(capsys, "train", "--dataset", tmp_path / "pets.npz", "--conditional", "--conditioning", "concat",
                   *TINY, "--steps", "4", "--out", run)[0] == 0
    assert read_png(run / "samples.png").shape == (3 * 10 + 2, 10 * 10 + 2)  # 8-pixel tiles, a row per class
    assert tinygan(capsys, "sample", "--checkpoint", run, "--class", "fox", "-n", "2", "--out",
                   tmp_path / "f.npy")[0] == 0
    assert np.load(tmp_path / "f.npy").shape == (2, 8, 8)
    code, err = tinygan(capsys, "sample", "--checkpoint", run, "--class", "owl", "--out", tmp_path / "f.npy")
    _one_line_error(code, err, "unknown class 'owl': expected one of cat, dog, Fox")


def test_a_conditional_run_resumes_with_its_classes(tmp_path, capsys):
    run = tmp_path / "run"
    assert tinygan(capsys, "train", "--conditional", "--conditioning", "concat", *TINY, "--steps", "4",
                   "--out", run)[0] == 0
    assert tinygan(capsys, "train", "--resume", run, "--steps", "8", "--conditional")[0] == 0
    assert GAN.load(str(run / "checkpoint.npz")).step == 8
    # the form it was saved with, given again, is accepted; another is refused as a change of model
    assert tinygan(capsys, "train", "--resume", run, "--steps", "9", "--conditioning", "concat")[0] == 0
    code, err = tinygan(capsys, "train", "--resume", run, "--steps", "10", "--conditional", "--conditioning",
                        "projection")
    _one_line_error(code, err, "--conditioning: a resumed run keeps its saved model (conditioning = concat)")
    plain = tmp_path / "plain"
    assert tinygan(capsys, "train", *TINY, "--steps", "2", "--out", plain)[0] == 0
    code, err = tinygan(capsys, "train", "--resume", plain, "--steps", "4", "--conditional")
    _one_line_error(code, err, "--conditional: a resumed run keeps its saved conditional (False)")


def test_eval_reports_the_conditional_accuracy_and_the_fd_of_each_class(tmp_path, monkeypatch, capsys):
    from tinygan.data import make_digits

    x, y = make_digits(1200, seed=11)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(evaluate, "load_dataset", lambda name, data_dir=None, split="train", **_: Dataset(
        "digits", *((x[:1000], y[:1000]) if split == "train" else (x[1000:], y[1000:])), "image", (0.0, 255.0)))
    monkeypatch.setattr(evaluate, "TrainSettings", lambda: TrainSettings(epochs=1, batch_size=100))
    gan = GAN.from_preset("default", (28, 28), g_hidden=[8], g_batchnorm=False, d_hidden=[8], latent_dim=3,
                          n_classes=10)
    gan.dataset_name = "digits"
    gan.save(str(tmp_path / "c.npz"))
    assert cli.main(["eval", "--checkpoint", str(tmp_path / "c.npz"), "--n", "400"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["conditional_accuracy"] <= 1 and 0 < result["classifier_test_accuracy"] <= 1
    assert len(result["fd_per_class"]) == 10 and all(fd > 0 for fd in result["fd_per_class"])
    assert result["classes_covered"] >= 1 and result["n"] == 400


def test_a_conditional_run_has_a_folder_of_its_own_by_default(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert tinygan(capsys, "train", "--conditional", *TINY, "--steps", "2")[0] == 0
    assert (tmp_path / "runs" / "digits-default-conditional" / "checkpoint.npz").is_file()


def test_a_resume_on_changed_labels_is_refused(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (256, 8, 8), dtype=np.uint8), rng.integers(0, 3, 256)
    np.savez(tmp_path / "pets.npz", x=x, y=y)
    run = tmp_path / "run"
    assert tinygan(capsys, "train", "--dataset", tmp_path / "pets.npz", "--conditional", *TINY, "--steps", "4",
                   "--out", run)[0] == 0
    assert "labels_sha256" in json.loads((run / "config.json").read_text())["dataset"]
    np.savez(tmp_path / "pets.npz", x=x, y=(y + 1) % 3)  # the same images, other classes
    code, err = tinygan(capsys, "train", "--resume", run, "--steps", "8")
    _one_line_error(code, err, "the class labels of the training data (pets) changed since the run was saved")
    np.savez(tmp_path / "pets.npz", x=x, y=y)
    assert tinygan(capsys, "train", "--resume", run, "--steps", "8")[0] == 0
