"""Inputs that cannot be turned against the user: memory requests, values checked for meaning,
a divergence guard that catches finite explosions, and messages that say what happened.

Every case plants the hostile input and checks: exit status 2, one line on stderr naming the
file or option, no traceback, and, where a run was going, the last good checkpoint intact.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from tinygan import cli
from tinygan.data import DataError, idx_bytes, load_dataset, read_idx, write_idx
from tinygan.data import sources as data_sources

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
