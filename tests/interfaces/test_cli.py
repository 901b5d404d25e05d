"""End to end through ``python -m tinygan``: train, then sample; every file a run writes is well-formed."""

from __future__ import annotations

import io
import json
import math
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinygan import GAN
from tinygan.engine.layers import Maxout
from tinygan.evaluation.scatter import FAKE_COLOR, REAL_COLOR
from tinygan.interfaces import cli
from tinygan.io.png import PNG_SIGNATURE, read_png
from tinygan.training.trainer import Progress

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--n-train", "256", "--batch-size", "32", "--g-hidden", "32", "--d-hidden", "32", "--latent-dim", "8",
    "--no-eval",
]
METRIC_KEYS = {"step", "d_loss", "g_loss", "d_real", "d_fake", "steps_per_s"}


pytestmark = pytest.mark.usefixtures("numpy_one_blas_thread")


def tinygan(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", TINYGAN_BACKEND="numpy")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    command = [sys.executable, "-m", "tinygan", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def png_header(path: Path) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from the IHDR chunk, which must come first."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82"
    return width, height, depth, colour


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("digits")
    result = tinygan(
        "train", "--dataset", "digits", *TINY, "--steps", "20", "--log-every", "5", "--sample-every", "10",
        "--out", "run", cwd=cwd,
    )
    assert result.returncode == 0, result.stderr
    assert "done: run/samples.png" in result.stderr
    assert "training default on digits" in result.stderr
    assert "step 20/20 epoch 3 | D " in result.stderr  # a progress line per log record off a terminal
    return cwd / "run"


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("ring")
    result = tinygan(
        "train", "--dataset", "ring", *TINY, "--latent-dim", "2", "--steps", "10", "--out", "run", cwd=cwd
    )
    assert result.returncode == 0, result.stderr
    assert "training points on ring" in result.stderr  # image presets fall back to `points` for 2-D data
    return cwd / "run"


# =========================================================================== train


def test_run_folder_holds_well_formed_files(digits_run):
    names = {p.name for p in digits_run.iterdir()}
    assert {"samples.png", "metrics.jsonl", "config.json", "checkpoint.npz"} <= names
    hidden = sorted(p.name for p in digits_run.glob(".*"))
    assert hidden == [".tinygan-run"], "no temporary files are left behind, only the run folder's marker"

    width, height, depth, colour = png_header(digits_run / "samples.png")
    side = 10 * 28 + 11 * 2  # a 10x10 grid of 28x28 digits with 2-pixel gutters
    assert (width, height, depth, colour) == (side, side, 8, 0)
    assert read_png(digits_run / "samples.png").shape == (side, side)

    records = [json.loads(line) for line in (digits_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [5, 10, 15, 20]
    for r in records:
        assert METRIC_KEYS <= set(r)
        assert all(math.isfinite(r[k]) for k in METRIC_KEYS)
        assert 0 <= r["d_real"] <= 1 and 0 <= r["d_fake"] <= 1 and r["steps_per_s"] > 0

    config = json.loads((digits_run / "config.json").read_text())
    assert config["run"]["total_steps"] == 20 and config["backend"] == "numpy"
    sha256 = config["dataset"].pop("sha256")
    assert config["dataset"] == {"name": "digits", "n": 256, "kind": "image"}
    assert len(sha256) == 64 and int(sha256, 16) >= 0  # the data's fingerprint, checked on resume
    assert config["model"]["g_hidden"] == [32] and config["model"]["latent_dim"] == 8
    assert config["run"]["seed"] == 0 and config["run"]["checkpoint_every"] == 1000

    with zipfile.ZipFile(digits_run / "checkpoint.npz") as z:
        assert all(name.endswith(".npy") for name in z.namelist())
    with np.load(digits_run / "checkpoint.npz", allow_pickle=False) as f:
        assert json.loads(str(f["__meta__"]))["step"] == 20
    gan = GAN.load(str(digits_run / "checkpoint.npz"))
    assert gan.step == 20 and gan.config.data_shape == (28, 28)


def test_sample_npy_and_png(digits_run, tmp_path):
    checkpoint = str(digits_run / "checkpoint.npz")
    result = tinygan("sample", "--checkpoint", checkpoint, "-n", "10", "--out", "x.npy", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "wrote 10 samples to x.npy"
    x = np.load(tmp_path / "x.npy", allow_pickle=False)
    assert x.shape == (10, 28, 28) and x.dtype == np.float32
    assert np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0

    result = tinygan("sample", "--checkpoint", str(digits_run), "-n", "10", "--out", "x.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    side_w, side_h = 4 * 28 + 5 * 2, 3 * 28 + 4 * 2  # 10 images: 4 columns, 3 rows
    assert png_header(tmp_path / "x.png") == (side_w, side_h, 8, 0)
    assert read_png(tmp_path / "x.png").shape == (side_h, side_w)


def test_sample_is_reproducible_per_seed(digits_run, tmp_path):
    def draw(seed: str, name: str) -> np.ndarray:
        assert cli.main(["sample", "--checkpoint", str(digits_run), "-n", "6", "--seed", seed,
                         "--out", str(tmp_path / name)]) == 0
        return np.load(tmp_path / name)

    assert np.array_equal(draw("3", "a.npy"), draw("3", "b.npy"))
    assert not np.array_equal(draw("3", "a.npy"), draw("4", "c.npy"))


def test_maxout_discriminator_from_the_command_line(tmp_path):
    run = tmp_path / "run"
    assert cli.main(["train", "--dataset", "grid", *TINY, "--latent-dim", "2", "--steps", "3",
                     "--d-activation", "maxout", "--maxout-pieces", "3", "--out", str(run)]) == 0  # fmt: skip
    gan = GAN.load(str(run / "checkpoint.npz"))
    maxouts = [layer for layer in gan.D.layers if isinstance(layer, Maxout)]
    assert [m.pieces for m in maxouts] == [3]  # one hidden layer of 32 units, each taking 3 Dense outputs
    assert gan.D.layers[0].n_out == 32 * 3
    assert gan.sample(4).shape == (4, 2)


def test_ring_writes_a_scatter_plot(ring_run, tmp_path):
    assert png_header(ring_run / "samples.png") == (512, 512, 8, 2)  # RGB
    pixels = read_png(ring_run / "samples.png").reshape(-1, 3)
    colours = {tuple(p) for p in np.unique(pixels, axis=0)}
    assert REAL_COLOR in colours and FAKE_COLOR in colours  # data in blue, generated points in orange
    assert cli.main(["sample", "--checkpoint", str(ring_run), "-n", "50",
                     "--out", str(tmp_path / "p.npy")]) == 0
    points = np.load(tmp_path / "p.npy")
    assert points.shape == (50, 2) and np.isfinite(points).all()
    assert cli.main(["sample", "--checkpoint", str(ring_run), "-n", "50",
                     "--out", str(tmp_path / "p.png")]) == 0
    assert png_header(tmp_path / "p.png") == (512, 512, 8, 2)


def test_epochs_and_default_run_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert cli.main(["train", "--dataset", "digits", *TINY, "--epochs", "0.5"]) == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["digits-default", "digits-default-2"]
    assert GAN.load(str(tmp_path / "runs" / "digits-default-2")).step == 4  # half of 256 / 32 steps
    assert "-> runs/digits-default-2" in capsys.readouterr().err


def test_extending_a_finished_run_matches_a_longer_run(tmp_path, capsys):
    """--resume with a larger --steps continues a finished run exactly where a longer run would be."""
    common = ["train", "--dataset", "digits", *TINY, "--d-dropout", "0.3"]
    assert cli.main([*common, "--steps", "12", "--out", str(tmp_path / "long")]) == 0
    assert cli.main([*common, "--steps", "5", "--out", str(tmp_path / "short")]) == 0
    assert cli.main(["train", "--resume", str(tmp_path / "short"), "--steps", "12"]) == 0
    a, b = GAN.load(str(tmp_path / "long")), GAN.load(str(tmp_path / "short"))
    assert b.step == 12
    sa, sb = a.state()[0], b.state()[0]
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert json.loads((tmp_path / "short" / "config.json").read_text())["run"]["total_steps"] == 12


# =========================================================================== help and options


def _options(parser) -> dict[str, list[str]]:
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return {
        name: [s for a in p._actions for s in a.option_strings if s.startswith("--") or s == "-n"]
        for name, p in sub.choices.items()
    }


@pytest.mark.parametrize("command", ["train", "sample", "eval"])
def test_help_mentions_every_option(command, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    options = _options(cli.build_parser())[command]
    assert "--help" in options and len(options) > 3
    missing = [o for o in options if o not in text]
    assert not missing, f"{command} --help does not mention {missing}"
    assert "(default: None)" not in text


def test_train_help_lists_model_options():
    options = _options(cli.build_parser())["train"]
    for name in cli.MODEL_OPTIONS:
        assert "--" + name.replace("_", "-") in options


def test_top_level_help_and_missing_command(tmp_path):
    result = tinygan("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("train", "sample", "eval"):
        assert command in result.stdout
    result = tinygan(cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("usage: tinygan")


# =========================================================================== progress display


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_display_on_a_terminal_and_off():
    record = {"d_loss": 1.2, "g_loss": 0.7, "d_real": 0.6, "d_fake": 0.4, "steps_per_s": 50.0}
    tty = cli.ProgressDisplay(_Terminal())
    tty.update(Progress(5, 100, 1, None))
    tty.update(Progress(10, 100, 1, record))
    tty.close()
    out = tty.stream.getvalue()
    assert out.startswith("\r[") and "10/100" in out and "ETA 0:01" in out and out.endswith("\n")
    plain = cli.ProgressDisplay(io.StringIO())
    plain.update(Progress(5, 100, 1, None))
    plain.update(Progress(10, 100, 1, record))
    assert plain.stream.getvalue() == (
        "step 10/100 epoch 1 | D 1.200 G 0.700 D(x) 0.60 D(G(z)) 0.40 | 50.0 steps/s ETA 0:01\n"
    )
