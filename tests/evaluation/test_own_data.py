"""The user's own data end to end: train on a folder of colour PNGs with class sub-folders, then measure.

With labels the judge classifier is trained on the data (cached by its digest) and the metrics are
those of the built-in datasets; without, the metrics that need no classifier, and the names of
those that need labels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinygan import GAN, VAE, DataError, evaluate, load_dataset
from tinygan.evaluation.own_data import NEEDS_LABELS, held_out_split
from tinygan.interfaces import cli
from tinygan.io.png import png_bytes, read_png

pytestmark = pytest.mark.usefixtures("numpy_one_blas_thread")
COLOURS = {"blue": (0.2, 0.3, 1.0), "green": (0.2, 1.0, 0.3), "red": (1.0, 0.2, 0.2)}
SIDE, PER_CLASS = 8, 20
TINY = ["--steps", "12", "--batch-size", "16", "--g-hidden", "32", "--d-hidden", "32", "--latent-dim", "8"]


def colour_folder(root: Path) -> Path:
    """Three classes of tinted noise, 8×8 RGB, one PNG file each, in class sub-folders."""
    rng = np.random.default_rng(0)
    for name, tint in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(PER_CLASS):
            pixels = (rng.uniform(0.4, 1.0, (SIDE, SIDE, 1)) * np.array(tint) * 255).astype(np.uint8)
            (root / name / f"{i:02d}.png").write_bytes(png_bytes(pixels))
    return root


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A working folder with the colour folder in it, and a cache of its own for the judge."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    colour_folder(tmp_path / "shapes")
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_default_and_conditional_on_a_folder_then_eval(home, capsys):
    code, _, err = run(capsys, "train", "--dataset", "shapes/", *TINY, "--eval-every", "6", "--out", "run")
    assert code == 0, err
    records = [json.loads(line) for line in (home / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "fd" in r] == [6, 12]  # FD during training, on the data's own judge
    assert "training default on shapes (60 samples)" in err
    assert read_png(home / "run" / "samples.png").shape[2] == 3  # a colour grid
    written = json.loads((home / "run" / "eval.json").read_text())  # measured at the end of training
    assert written["dataset"] == "shapes" and written["fd"] >= 0 and written["classifier_test_accuracy"] > 0.5
    assert "conditional_accuracy" not in written

    code, _, err = run(capsys, "train", "--dataset", "shapes", "--conditional", *TINY, "--no-eval", "--out", "crun")
    assert code == 0, err
    assert read_png(home / "crun" / "samples.png").shape == (3 * SIDE + 8, 10 * SIDE + 22, 3)  # a row per class
    code, out, err = run(capsys, "eval", "--checkpoint", "crun", "--n", "300")
    assert code == 0, err
    result = json.loads(out)
    assert result["n"] == 300 and result["n_test"] == 12 and result["n_data"] == 60
    assert 0 <= result["conditional_accuracy"] <= 1 and result["fd"] >= 0 and len(result["fd_per_class"]) == 3
    assert {"classes_covered", "cis", "nearest_real", "std_ratio"} <= set(result)
    assert "training the shapes evaluation classifier" not in err  # cached by the data's digest
    assert list((home / "cache" / "tinygan" / "own-data").glob("classifier-*.npz"))

    code, out, _ = run(capsys, "sample", "--checkpoint", "crun", "--class", "red", "-n", "4", "--out", "red.npy")
    assert code == 0 and np.load(home / "red.npy").shape == (4, SIDE, SIDE, 3)


def test_eval_without_labels_says_what_needs_them(home, capsys):
    flat = home / "flat"
    flat.mkdir()
    for p in sorted((home / "shapes" / "red").glob("*.png")):
        (flat / p.name).write_bytes(p.read_bytes())
    code, _, err = run(capsys, "train", "--model", "vae", "--dataset", "flat", "--steps", "5", "--batch-size", "8",
                       "--no-eval", "--out", "vrun")
    assert code == 0, err
    assert read_png(home / "vrun" / "reconstructions.png").ndim == 3  # colour originals above reconstructions
    code, _, err = run(capsys, "sample", "--checkpoint", "vrun", "--reconstruct", "shapes", "-n", "3", "--out", "r.png")
    assert code == 0 and read_png(home / "r.png").shape == (2 * SIDE + 6, 3 * SIDE + 8, 3)
    code, out, err = run(capsys, "eval", "--checkpoint", "vrun/checkpoint.npz", "--n", "50")
    assert code == 0, err
    result = json.loads(out)
    assert result["needs_labels"] == list(NEEDS_LABELS) and "no class labels" in result["note"]
    assert "fd" not in result and result["neg_elbo"] > 0 and result["elbo_n"] == 4
    assert result["nearest_real"] > 0 and result["std_ratio"] > 0


def test_eval_names_the_data_it_needs(home, capsys):
    code, _, err = run(capsys, "train", "--dataset", "shapes", *TINY, "--no-eval", "--out", "run")
    assert code == 0, err
    (home / "run" / "config.json").write_text("{}")  # the recorded path is gone
    code, _, err = run(capsys, "eval", "--checkpoint", "run", "--n", "10")
    assert code == 2 and "pass --dataset" in err and len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, "eval", "--checkpoint", "run", "--n", "10", "--dataset", "shapes")
    assert code == 0 and json.loads(out)["n"] == 10
    code, _, err = run(capsys, "eval", "--checkpoint", "run", "--dataset", "digits")
    assert code == 2 and "error: digits: holds samples of shape (28, 28), the model draws (8, 8, 3)" in err
    np.save(home / "other.npy", np.zeros((5, 4, 4), np.uint8))
    code, _, err = run(capsys, "eval", "--checkpoint", "run", "--dataset", "other.npy")
    assert code == 2 and "the model draws image of shape (8, 8, 3), the data holds image of shape (4, 4)" in err


@pytest.mark.parametrize("damage", ["not-png", "truncated", "odd-size"])
def test_a_bad_file_in_the_folder_stops_training_before_anything_is_written(home, capsys, damage):
    target = home / "shapes" / "green" / "07.png"
    if damage == "not-png":
        target.write_bytes(b"GIF89a" + bytes(30))
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[:-20])
    else:
        target.write_bytes(png_bytes(np.zeros((SIDE, SIDE + 1, 3), np.uint8)))
    code, _, err = run(capsys, "train", "--dataset", "shapes", *TINY, "--out", "run")
    assert code == 2 and err.startswith(f"tinygan train: error: {Path('shapes') / 'green' / '07.png'}: ")
    assert len(err.strip().splitlines()) == 1 and not (home / "run").exists() and not (home / "runs").exists()


def test_the_api_takes_the_same_inputs(home):
    data = load_dataset("shapes")
    gan = GAN.from_preset("default", data_shape=data.sample_shape, seed=0, n_classes=3, g_hidden=[16], d_hidden=[16],
                          g_batchnorm=False, d_batchnorm=False, latent_dim=4, batch_size=16)
    gan.fit(data.x, steps=3, y=data.labels)
    by_path = evaluate(gan, "shapes", n=60)
    assert by_path == evaluate(gan, data, n=60)
    assert "conditional_accuracy" in by_path
    by_array = evaluate(gan, data.x.astype(np.float32) / 255, n=60, labels=data.labels)
    assert by_array["fd"] >= 0 and by_array["dataset"] == "data"
    assert "needs_labels" in evaluate(gan, data.x, n=60)
    with pytest.raises(DataError, match="no built-in metrics for dataset None"):
        evaluate(gan)
    with pytest.raises(DataError, match=r"^mnist: holds samples of shape \(28, 28\), the model draws \(8, 8, 3\)$"):
        evaluate(gan, "mnist")
    vae = VAE.from_preset("vae", data_shape=(SIDE, SIDE, 3), enc_hidden=[16], dec_hidden=[16], latent_dim=4)
    vae.fit(data.x, steps=2, batch_size=16)
    assert evaluate(vae, data, n=20)["elbo_n"] == 12


def test_the_held_out_split_takes_a_share_of_every_class():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 2 + [3])
    kept, held = held_out_split(len(labels), labels)
    assert sorted(np.concatenate([kept, held]).tolist()) == list(range(len(labels)))
    assert np.bincount(labels[held], minlength=4).tolist() == [2, 1, 1, 0]
    assert held_out_split(len(labels), labels)[1].tolist() == held.tolist()  # the same every time
    assert len(held_out_split(10, None)[1]) == 2


def test_an_array_of_another_channel_count_stops_training_in_one_line(home, capsys):
    np.save(home / "rgba.npy", np.zeros((20, 4, 4, 4), np.uint8))
    code, _, err = run(capsys, "train", "--dataset", "rgba.npy", *TINY, "--out", "run")
    assert code == 2 and err.startswith("tinygan train: error: rgba.npy: expected shape") and "C = 1 or 3" in err
    assert len(err.strip().splitlines()) == 1 and not (home / "run").exists()
