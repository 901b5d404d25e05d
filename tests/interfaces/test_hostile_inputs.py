"""Inputs that cannot be turned against the user: memory requests, values checked for meaning,
a divergence guard that catches finite explosions, and messages that say what happened.

Every case plants the hostile input and checks: exit status 2, one line on stderr naming the
file or option, no traceback, and, where a run was going, the last good checkpoint intact.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tinygan.io.files as files_module
from tinygan import GAN
from tinygan.backend import BackendError
from tinygan.data import idx_bytes, load_dataset, read_idx, write_idx
from tinygan.data import sources as data_sources
from tinygan.interfaces import cli
from tinygan.io.checkpoint import load_checkpoint
from tinygan.io.errors import CheckpointError, DataError
from tinygan.models.latents import seeded_latents

TINY = ["--dataset", "digits", "--n-train", "256", "--batch-size", "32", "--g-hidden", "16", "--d-hidden", "16",
        "--latent-dim", "8", "--no-eval"]

pytestmark = pytest.mark.usefixtures("numpy_one_blas_thread")


def error_line(capsys, *argv: str) -> str:
    """Run the CLI in-process; its one error line, after checking exit status 2 and no traceback."""
    code = cli.main(list(argv))
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert code == cli.EXIT_ERROR, err
    line = err.splitlines()[-1]
    assert line.startswith(f"tinygan {argv[0]}: error: "), err
    return line


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A trained tiny run's checkpoint (digits, 5 steps)."""
    run = tmp_path_factory.mktemp("hostile") / "run"
    assert cli.main(["train", *TINY, "--steps", "5", "--out", str(run)]) == 0
    return run / "checkpoint.npz"


def rewrite(path: Path, source: Path, arrays=None, meta=None) -> Path:
    """A copy of checkpoint ``source`` with arrays or metadata changed (valid zip, valid CRCs)."""
    with np.load(source, allow_pickle=False) as f:
        content = {k: f[k] for k in f.files}
    stored = json.loads(str(content.pop("__meta__")))
    for key, value in (meta or {}).items():
        if isinstance(value, dict) and isinstance(stored.get(key), dict):
            stored[key] = {**stored[key], **value}
        else:
            stored[key] = value
    content.update(arrays or {})
    np.savez(path, __meta__=np.array(json.dumps(stored)), **content)
    return path


# =========================================================================== unbounded memory from a small input


def write_bomb(path: Path, source: Path, n: int) -> None:
    """``source`` with its data order replaced by ``n`` zeros, deflated: a small file declaring ``8 n`` bytes."""
    with np.load(source, allow_pickle=False) as f:
        content = {k: f[k] for k in f.files if k != "data/perm"}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, array in content.items():
            buffer = io.BytesIO()
            np.save(buffer, array)
            z.writestr(name + ".npy", buffer.getvalue())
        with z.open("data/perm.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, {"descr": "<i8", "fortran_order": False, "shape": (n,)})
            zeros = bytes(2**20)
            for _ in range(8 * n // len(zeros)):
                member.write(zeros)


def test_a_compressed_checkpoint_is_measured_before_it_is_inflated(tmp_path, checkpoint, capsys):
    bomb = tmp_path / "bomb.npz"
    write_bomb(bomb, checkpoint, 2**24)  # 128 MB of zeros in a file of about 130 kB
    assert bomb.stat().st_size < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="compressed arrays inflate by") as info:
            GAN.load(str(bomb))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MB allocated before the refusal"
    assert str(bomb) in str(info.value)
    line = error_line(capsys, "sample", "--checkpoint", str(bomb), "--out", str(tmp_path / "x.npy"))
    assert line.startswith(f"tinygan sample: error: checkpoint {bomb}: its compressed arrays inflate by ")


def test_an_array_header_that_disagrees_with_the_directory_is_refused(tmp_path, checkpoint):
    forged = tmp_path / "forged.npz"
    with zipfile.ZipFile(checkpoint) as src, zipfile.ZipFile(forged, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "data/perm.npy":  # the header claims 2**40 entries; the member holds 256
                data = data.replace(b"(256,)", b"(1099511627776,)".ljust(len(b"(256,)")), 1)[: len(data)]
                header = io.BytesIO()
                np.lib.format.write_array_header_1_0(header, {"descr": "<i8", "fortran_order": False,
                                                              "shape": (2**40,)})
                data = header.getvalue() + bytes(256 * 8)
            dst.writestr(info, data)
    with pytest.raises(CheckpointError, match=r"member 'data/perm.npy' declares \d+ bytes, its array header"):
        load_checkpoint(forged)


def run_npy_sample(capsys, checkpoint: Path, n: int, out: Path) -> None:
    assert cli.main(["sample", "--checkpoint", str(checkpoint), "-n", str(n), "--out", str(out)]) == 0, (
        capsys.readouterr().err
    )


def test_sample_writes_a_long_npy_a_chunk_at_a_time(tmp_path, checkpoint, capsys, monkeypatch):
    from tinygan.models.latents import SAMPLE_CHUNK

    batches = []
    real_sample = GAN.sample

    def counting(self, n, z=None):
        batches.append(n)
        return real_sample(self, n, z)

    monkeypatch.setattr(GAN, "sample", counting)
    n = 2 * SAMPLE_CHUNK + 7
    run_npy_sample(capsys, checkpoint, n, tmp_path / "x.npy")
    assert max(batches) <= SAMPLE_CHUNK and sum(batches) == n, "generated in chunks"
    monkeypatch.undo()
    got = np.load(tmp_path / "x.npy")
    gan = GAN.load(str(checkpoint))
    want = gan.sample(n, z=seeded_latents(n, gan.config.latent_dim, 0))
    assert got.shape == (n, 28, 28) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # the latents of one stream, whatever the chunks


BIG = str(10**13)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["sample", "-n", BIG, "--out", "{tmp}/x.npy"], f"-n {BIG}: {{tmp}}/x.npy would take "),
        (["sample", "-n", "20000", "--out", "{tmp}/x.png"], "-n 20000: a .png grid shows at most 10000 images"),
        (["eval", "--n", BIG], f"--n {BIG}: needs about "),
        (["train", "--g-hidden", "10000000,10000000", "--n-train", "256", "--no-eval"],
         "--g-hidden 10000000,10000000: a model of "),
        (["train", "--latent-dim", "100000000000", "--n-train", "256", "--no-eval"],
         "--latent-dim 100000000000: a model of "),
        (["train", "--n-train", BIG, "--no-eval"], f"--n-train {BIG}: needs about "),
        (["train", "--model", "vae", "--enc-hidden", "10000000,10000000", "--n-train", "256", "--no-eval"],
         "--enc-hidden 10000000,10000000: a model of "),
        (["train", "--model", "vae", "--latent-dim", "100000000000", "--n-train", "256", "--no-eval"],
         "--latent-dim 100000000000: a model of "),
    ],
    ids=["sample-npy", "sample-png", "eval", "train-widths", "train-latent", "train-n", "vae-widths", "vae-latent"],
)
def test_memory_requests_that_cannot_be_met_are_one_line(tmp_path, checkpoint, capsys, argv, expected):
    argv = [a.format(tmp=tmp_path) for a in argv]
    if argv[0] in ("sample", "eval"):
        argv[1:1] = ["--checkpoint", str(checkpoint)]
    else:
        argv += ["--out", str(tmp_path / "run")]
    line = error_line(capsys, *argv)
    assert line.startswith(f"tinygan {argv[0]}: error: {expected.format(tmp=tmp_path)}"), line
    assert "available" in line or "free there" in line or "at most" in line
    assert list(tmp_path.iterdir()) == [], "nothing is written"


def test_generated_data_of_any_size_is_measured_first():
    with pytest.raises(DataError, match=r"^digits: n=10000000000000: needs about .* of memory"):
        load_dataset("digits", n=10**13)


# =========================================================================== values checked for meaning


def mnist_dir(folder: Path, images: np.ndarray, labels: np.ndarray, test: bool = True) -> Path:
    folder.mkdir(exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte", images)
    write_idx(folder / "train-labels-idx1-ubyte", labels)
    if test:
        write_idx(folder / "t10k-images-idx3-ubyte", images)
        write_idx(folder / "t10k-labels-idx1-ubyte", labels)
    return folder


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TINYGAN_DATA", raising=False)
    monkeypatch.setattr(data_sources, "_urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))


MNIST = ["--dataset", "mnist", "--batch-size", "8", "--g-hidden", "8", "--d-hidden", "8", "--steps", "2", "--no-eval"]


def test_idx_labels_outside_the_classes_are_named(tmp_path, capsys, offline):
    labels = np.arange(40, dtype=np.uint8) % 10
    labels[3] = 200
    folder = mnist_dir(tmp_path / "mnist", np.zeros((40, 28, 28), np.uint8), labels)
    line = error_line(capsys, "train", *MNIST, "--data-dir", str(folder), "--out", str(tmp_path / "run"))
    assert line == (
        f"tinygan train: error: {folder}/train-labels-idx1-ubyte: label 200 at index 3 is outside 0..9 "
        "(1 labels out of range)"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("shape", [(40, 0, 28), (0, 28, 28)], ids=["empty-rows", "no-images"])
def test_idx_data_with_an_empty_dimension_is_named(tmp_path, capsys, offline, shape):
    folder = mnist_dir(tmp_path / "mnist", np.zeros(shape, np.uint8), np.zeros(shape[0], np.uint8))
    line = error_line(capsys, "train", *MNIST, "--data-dir", str(folder), "--out", str(tmp_path / "run"))
    assert line.startswith(f"tinygan train: error: {folder}/train-images-idx3-ubyte: expected uint8 images ")
    assert f"got uint8 {shape}" in line


def test_an_empty_test_split_is_named_before_training(tmp_path, capsys, offline):
    """The test split is read to measure the run: an empty one is refused at setup, the run folder removed."""
    folder = mnist_dir(tmp_path / "mnist", np.zeros((40, 28, 28), np.uint8), np.zeros(40, np.uint8), test=False)
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((0, 28, 28), np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(0, np.uint8))
    argv = [a for a in MNIST if a != "--no-eval"]
    line = error_line(capsys, "train", *argv, "--data-dir", str(folder), "--out", str(tmp_path / "run"))
    assert line.startswith(f"tinygan train: error: {folder}/t10k-images-idx3-ubyte: ")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"arrays": {"G/0.W": "nan"}}, "array 'G/0.W' holds NaN or infinite values"),
        ({"arrays": {"opt_d/v": "inf"}}, "array 'opt_d/v' holds NaN or infinite values"),
        ({"arrays": {"G/0.W": "huge"}}, "not a good checkpoint, training diverged at step 5: generator parameters"),
        ({"meta": {"config": {"lr_g": "fast"}}}, "lr_g = 'fast': expected a positive number"),
        ({"meta": {"config": {"lr_d": float("nan")}}}, "lr_d = nan: expected a positive number"),
        ({"meta": {"config": {"betas": [1.5, 0.9]}}}, "betas = (1.5, 0.9): expected two numbers in [0, 1)"),
        ({"meta": {"config": {"batch_size": 0}}}, "batch_size = 0: expected a positive integer"),
        ({"meta": {"config": {"data_shape": [0, 28]}}}, "data_shape = (0, 28): expected a non-empty tuple"),
        ({"arrays": {"opt_g/t": np.array(-1)}}, "optimizer step count must be a non-negative integer"),
        ({"meta": {"seed": -1}}, "seed -1 is not a non-negative integer"),
    ],
    ids=["nan", "inf-adam", "exploded", "lr-text", "lr-nan", "betas", "batch", "empty-dim", "adam-t", "seed"],
)
def test_checkpoint_values_are_checked_for_meaning(tmp_path, capsys, checkpoint, change, named):
    arrays = {}
    with np.load(checkpoint) as f:
        for key, kind in change.get("arrays", {}).items():
            if isinstance(kind, str):
                a = f[key].copy()
                a.flat[0] = {"nan": np.nan, "inf": np.inf}.get(kind, 0.0)
                arrays[key] = a * 1e20 if kind == "huge" else a
            else:
                arrays[key] = kind
    bad = rewrite(tmp_path / "bad.npz", checkpoint, arrays, change.get("meta"))
    line = error_line(capsys, "sample", "--checkpoint", str(bad), "--out", str(tmp_path / "x.npy"))
    assert line.startswith(f"tinygan sample: error: checkpoint {bad}: "), line
    assert named in line, line
    # Resuming from it: refused the same way, never called the last good checkpoint, the file untouched.
    run = tmp_path / "run"
    assert cli.main(["train", *TINY, "--steps", "2", "--out", str(run)]) == 0
    (run / "checkpoint.npz").write_bytes(bad.read_bytes())
    capsys.readouterr()
    line = error_line(capsys, "train", "--resume", str(run), "--steps", "9")
    assert named in line and "last good" not in line
    assert (run / "checkpoint.npz").read_bytes() == bad.read_bytes()


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["train", "--seed", "-1"], "argument --seed: expected a non-negative integer, got -1"),
        (["train", "--seed=-1"], "argument --seed: expected a non-negative integer, got -1"),
        (["sample", "--checkpoint", "c", "--out", "x.npy", "--seed", "-1"], "argument --seed: expected a non-negative"),
        (["eval", "--checkpoint", "c", "--seed", "-1"], "argument --seed: expected a non-negative integer"),
        (["eval", "--checkpoint", "c", "--n", "1"], "argument --n: expected an integer of at least 2, got 1"),
        (["eval", "--checkpoint", "c", "--n", "0"], "argument --n: expected an integer of at least 2, got 0"),
    ],
)
def test_option_values_are_checked_where_they_enter(capsys, argv, named):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"tinygan {argv[0]}: error: {named}" in err


def test_eval_of_two_samples_works(tmp_path, capsys):
    gan = GAN.from_preset("points", (2,), seed=0, g_hidden=[8], d_hidden=[8])
    gan.dataset_name = "ring"
    gan.save(str(tmp_path / "checkpoint.npz"))
    assert cli.main(["eval", "--checkpoint", str(tmp_path), "--n", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 2


# =========================================================================== the divergence guard


def poison(monkeypatch, at: int, what: str) -> None:
    """From step ``at`` on, make the state explode while staying finite."""
    real_step = GAN.train_step

    def step(self, real, z=None):
        metrics = real_step(self, real, z)
        if self.step >= at:
            if what == "params":
                self.G.params[...] = 1e6 * (1.0 + self.G.params)
            else:
                metrics["d_loss"] = metrics["d_loss"] * 0 + 5e4
        return metrics

    monkeypatch.setattr(GAN, "train_step", step)


@pytest.mark.parametrize(
    ("what", "log_every", "named"),
    [
        ("params", "10", "training diverged at step 8: generator parameters reach "),
        ("loss", "1", "training diverged at step 7: d_loss is 5e+04, beyond 1000 (the losses exploded)"),
        # the mean of the steps since the last record: (2 * 5e4 + 6 healthy losses) / 8
        ("loss", "10", "training diverged at step 8: d_loss is 1.25e+04, beyond 1000 (the losses exploded)"),
    ],
    ids=["params", "loss-logged", "loss-between-logs"],
)
def test_a_finite_explosion_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch, what, log_every, named):
    """Exploded but finite from step 7, a checkpoint every 2 steps: step 6 is kept, the step named."""
    poison(monkeypatch, 7, what)
    run = tmp_path / "run"
    line = error_line(capsys, "train", *TINY, "--steps", "30", "--out", str(run), "--checkpoint-every", "2",
                      "--log-every", log_every)
    assert line.startswith(f"tinygan train: error: {named}"), line
    assert f"the last good checkpoint (step 6) is kept in {run / 'checkpoint.npz'}" in line
    monkeypatch.undo()
    kept = GAN.load(str(run / "checkpoint.npz"))
    assert kept.step == 6 and np.abs(kept.G.params).max() < 100


# =========================================================================== messages that say what happened


def test_disk_full_names_the_file_and_what_is_kept(tmp_path, capsys, monkeypatch):
    full = {"now": False}
    real_save, real_fsync = GAN.save, files_module.os.fsync

    def save(self, path, extra_meta=None):
        full["now"] = self.step >= 6
        try:
            real_save(self, path, extra_meta)
        finally:
            full["now"] = False

    def fsync(fd):
        if full["now"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(GAN, "save", save)
    monkeypatch.setattr(files_module.os, "fsync", fsync)
    run = tmp_path / "run"
    line = error_line(capsys, "train", *TINY, "--steps", "20", "--out", str(run), "--checkpoint-every", "3")
    checkpoint = run / "checkpoint.npz"
    assert line == (
        f"tinygan train: error: {checkpoint}: cannot write (No space left on device); the checkpoint of step 3 "
        f"is kept in {checkpoint}; resume with: python -m tinygan train --resume {run}"
    )
    monkeypatch.undo()
    assert GAN.load(str(checkpoint)).step == 3
    assert not list(run.glob(".*.tmp"))


def test_disk_full_on_metrics_names_metrics(tmp_path, capsys, monkeypatch):
    from tinygan.training import run_record

    class Full(io.BytesIO):
        def flush(self):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_record, "open_for_append", lambda path: Full())
    run = tmp_path / "run"
    line = error_line(capsys, "train", *TINY, "--steps", "20", "--out", str(run), "--log-every", "5")
    assert line == (
        f"tinygan train: error: {run / 'metrics.jsonl'}: cannot write (No space left on device); "
        "no checkpoint was saved"
    )


def test_a_second_signal_reports_the_checkpoint_on_disk(tmp_path, capsys, monkeypatch):
    """The second Ctrl-C lands just after the checkpoint of step 6 replaced that of step 3."""
    real_save = GAN.save

    def save(self, path, extra_meta=None):
        real_save(self, path, extra_meta)
        if self.step == 6:
            raise KeyboardInterrupt

    monkeypatch.setattr(GAN, "save", save)
    run = tmp_path / "run"
    code = cli.main(["train", *TINY, "--steps", "20", "--out", str(run), "--checkpoint-every", "3"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_INTERRUPTED and "Traceback" not in err
    assert f"interrupted again at step 6: the checkpoint of step 6 is kept in {run / 'checkpoint.npz'}" in err
    monkeypatch.undo()
    assert GAN.load(str(run / "checkpoint.npz")).step == 6


def test_a_corrupted_gzip_stream_is_called_corrupt(tmp_path):
    raw = idx_bytes(np.zeros((40, 28, 28), np.uint8))
    longer = bytearray(gzip.compress(raw + bytes(1000), mtime=0))
    longer[-8] ^= 0xFF  # the CRC: the data inflates past the declared size, and the stream is damaged
    path = tmp_path / "images.gz"
    path.write_bytes(bytes(longer))
    with pytest.raises(DataError, match=rf"^{path}: corrupt gzip data \("):
        read_idx(path)
    cut = gzip.compress(raw + bytes(1000), mtime=0)[:-20]  # a stream cut short that holds more than declared
    path.write_bytes(cut)
    with pytest.raises(DataError, match=rf"^{path}: truncated gzip data"):
        read_idx(path)
    path.write_bytes(gzip.compress(raw + bytes(1000), mtime=0))  # whole and valid, only longer: too long
    with pytest.raises(DataError, match=rf"^{path}: IDX file too long"):
        read_idx(path)


def test_a_missing_cupy_is_not_called_a_bad_checkpoint(tmp_path, capsys, checkpoint, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    line = error_line(capsys, "sample", "--checkpoint", str(checkpoint), "--backend", "cupy", "--out", "x.npy")
    assert line.startswith("tinygan sample: error: backend 'cupy' needs CuPy") and "checkpoint" not in line
    monkeypatch.setenv("TINYGAN_BACKEND", "cupy")
    line = error_line(capsys, "sample", "--checkpoint", str(checkpoint), "--out", "x.npy")
    assert line.startswith("tinygan sample: error: backend 'cupy' needs CuPy")
    monkeypatch.delenv("TINYGAN_BACKEND")

    def no_device(*args, **kwargs):  # CuPy found the moment the model is built, then CUDA failing
        raise BackendError("backend 'cupy': no CUDA device is visible (check CUDA_VISIBLE_DEVICES)")

    monkeypatch.setattr(GAN, "from_state", no_device)
    line = error_line(capsys, "sample", "--checkpoint", str(checkpoint), "--out", "x.npy")
    assert line == "tinygan sample: error: backend 'cupy': no CUDA device is visible (check CUDA_VISIBLE_DEVICES)"


def test_a_folder_given_as_a_checkpoint_is_called_a_folder(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = error_line(capsys, "sample", "--checkpoint", str(empty), "--out", str(tmp_path / "x.npy"))
    assert line == f"tinygan sample: error: checkpoint {empty}: a folder with no checkpoint.npz in it " \
        "(not a tinygan run folder?)"
    (empty / "checkpoint.npz").mkdir()
    line = error_line(capsys, "eval", "--checkpoint", str(empty))
    assert line == f"tinygan eval: error: checkpoint {empty / 'checkpoint.npz'}: is a folder, not a checkpoint file"


@pytest.fixture
def finished(tmp_path) -> Path:
    run = tmp_path / "run"
    assert cli.main(["train", *TINY, "--steps", "4", "--seed", "3", "--out", str(run)]) == 0
    return run


@pytest.mark.parametrize(
    ("given", "named"),
    [
        (["--dataset", "ring"], "--dataset: a resumed run keeps its saved dataset ('digits')"),
        (["--seed", "4"], "--seed: a resumed run keeps its saved seed (3)"),
        (["--n-train", "512"], "--n-train: a resumed run keeps its saved n_train (256)"),
        (["--model", "article"], "--model: a resumed run keeps its saved model ('default')"),
        (["--out", "elsewhere"], "--out: a resumed run stays in its folder ({run}); drop --out"),
    ],
)
def test_resume_refuses_options_it_would_ignore(capsys, finished, given, named):
    capsys.readouterr()
    line = error_line(capsys, "train", "--resume", str(finished), *given)
    assert line.startswith(f"tinygan train: error: {named.format(run=finished)}"), line
    assert GAN.load(str(finished)).step == 4


def test_resume_accepts_the_saved_values_given_again(capsys, finished):
    code = cli.main(["train", "--resume", str(finished), "--dataset", "digits", "--seed", "3", "--steps", "6"])
    assert code == 0, capsys.readouterr().err
    assert GAN.load(str(finished)).step == 6


@pytest.mark.parametrize("saved", ["checkpoint", "config"])
def test_resume_refuses_changed_data(tmp_path, capsys, saved):
    data = tmp_path / "points.npy"
    np.save(data, np.random.default_rng(0).random((256, 2)).astype(np.float32))
    run = tmp_path / "run"
    args = ["--dataset", str(data), "--batch-size", "32", "--g-hidden", "8", "--d-hidden", "8", "--no-eval"]
    assert cli.main(["train", *args, "--steps", "4", "--out", str(run)]) == 0
    if saved == "config":  # killed before its first checkpoint: config.json holds the fingerprint
        (run / "checkpoint.npz").unlink()
    np.save(data, np.random.default_rng(1).random((256, 2)).astype(np.float32))
    capsys.readouterr()
    line = error_line(capsys, "train", "--resume", str(run), "--steps", "8")
    assert line.startswith(
        f"tinygan train: error: --resume {run}: the training data (points) changed since the run was saved (256 "
    ), line
    assert line.endswith("resuming is refused: put the original data back, or start a new run with --out")


@pytest.mark.parametrize(
    "options",
    [{}, {"n_classes": 10}, {"n_classes": 10, "conditioning": "concat"}, {"pack": 2, "d_hidden": [64, 32]}],
    ids=["plain", "projection", "concat", "packed"],
)
def test_the_memory_estimate_counts_every_parameter_of_a_gan(options):
    gan = GAN.from_preset("default", (8, 8), seed=0, **options)
    assert _estimated_params(lambda: GAN(gan.config)) == gan.n_params  # the projection's class table included


def test_the_memory_estimate_counts_every_parameter_of_a_vae():
    from tinygan import VAE
    vae = VAE.from_preset("vae", (8, 8), seed=0, latent_dim=3, enc_hidden=[16], dec_hidden=[16, 8])
    assert _estimated_params(lambda: VAE(vae.config)) == vae.n_params


def _estimated_params(build):
    """The parameter count that a model's memory check (made before anything is allocated) works from:
    the check is made to refuse, and its request names the count."""
    from tinygan.io.errors import MemoryRequestError
    from tinygan.models import model

    real = model.shortfall
    model.shortfall = lambda nbytes, *rest: "refused here"
    try:
        with pytest.raises(MemoryRequestError) as refused:
            build()
    finally:
        model.shortfall = real
    return int(refused.value.request.split("a model of ")[1].split(" ")[0].replace(",", ""))
