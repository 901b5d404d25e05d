"""A data file's classes are the labels that occur: numbered 0..K−1, named by their labels when the
file gives no names, said in one line; names are text that can be printed, checked in linear time.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from tinygan import GAN, GANConfig, load_dataset
from tinygan.data import DataError
from tinygan.interfaces import cli
from tinygan.models.classes import class_indices, names_problem, sample_labels

pytestmark = pytest.mark.usefixtures("numpy_one_blas_thread")


def labelled(path, y, names=None, n=None):
    n = len(y) if n is None else n
    x = np.random.default_rng(0).integers(0, 256, (n, 8, 8), dtype=np.uint8)
    np.savez(path, x=x, y=np.asarray(y), **({} if names is None else {"names": names}))
    return path


def test_labels_that_occur_are_the_classes_named_by_their_labels(tmp_path, capsys):
    path = labelled(tmp_path / "odd.npz", [3, 7, 100, 7] * 8)
    ds = load_dataset(str(path))
    assert ds.class_names == ("3", "7", "100") and ds.labels.tolist() == [0, 1, 2, 1] * 8
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{path}: y: 3 classes with labels 3, 7, 100; numbered 0..2 here, each named by its label"]
    labelled(tmp_path / "plain.npz", [0, 1, 2] * 4)
    assert load_dataset(str(tmp_path / "plain.npz")).class_names == ("0", "1", "2")
    assert capsys.readouterr().err == "", "nothing to say when the labels are 0..K-1"


def test_names_of_labels_without_samples_are_dropped(tmp_path, capsys):
    names = np.array([f"c{i}" for i in range(12)])
    path = labelled(tmp_path / "named.npz", list(range(10)) * 2, names)
    ds = load_dataset(str(path))
    assert ds.class_names == tuple(f"c{i}" for i in range(10)) and ds.labels.tolist() == list(range(10)) * 2
    assert capsys.readouterr().err.strip() == (
        f"{path}: y: labels of 10 of the 12 named classes occur; numbered 0..9 here, the names of the 2 without "
        "samples dropped ('c10', 'c11')")
    ds = load_dataset(str(labelled(tmp_path / "gaps.npz", [1, 5] * 4, names)))
    assert ds.class_names == ("c1", "c5") and ds.labels.tolist() == [0, 1] * 4


@pytest.mark.parametrize("label", [10**7, 2**40, np.iinfo(np.int64).max])
def test_a_huge_label_is_one_class_quickly(tmp_path, label, capsys):
    tic = time.perf_counter()
    ds = load_dataset(str(labelled(tmp_path / "huge.npz", [0] * 9 + [label])))
    assert time.perf_counter() - tic < 1.0
    assert ds.class_names == ("0", str(label)) and ds.labels.tolist() == [0] * 9 + [1]


def test_the_class_the_user_called_100_is_sampled(tmp_path, capsys):
    path = labelled(tmp_path / "odd.npz", [3, 7, 100, 7] * 64)
    run = tmp_path / "run"
    assert cli.main(["train", "--dataset", str(path), "--conditional", "--conditioning", "concat", "--n-train", "256",
                     "--batch-size", "32", "--g-hidden", "16", "--d-hidden", "16", "--latent-dim", "4", "--no-eval",
                     "--steps", "2", "--out", str(run)]) == 0
    gan = GAN.load(str(run / "checkpoint.npz"))
    assert gan.config.n_classes == 3 and gan.config.class_names == ["3", "7", "100"]
    capsys.readouterr()
    assert cli.main(["sample", "--checkpoint", str(run), "--class", "100", "-n", "2", "--out",
                     str(tmp_path / "s.npy")]) == 0
    capsys.readouterr()
    for request in ("50", "1", "²"):
        code = cli.main(["sample", "--checkpoint", str(run), "--class", request, "--out", str(tmp_path / "t.npy")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert err == f"tinygan sample: error: --class {request}: unknown class {request!r}: expected one of 3, 7, 100"
    assert not (tmp_path / "t.npy").exists()


def test_a_requested_number_means_the_class_so_named():
    names = ["3", "7", "100"]
    assert sample_labels(3, ["100", "7", np.str_("3")], names).tolist() == [2, 1, 0]
    assert class_indices("100,3", names) == [2, 0]
    with pytest.raises(ValueError, match=r"^unknown class '1': expected one of 3, 7, 100$"):
        sample_labels(2, "1", names)
    assert sample_labels(3, [2, np.int64(1), 0], names).tolist() == [2, 1, 0]  # integers are class numbers, as in fit
    with pytest.raises(ValueError, match=r"^unknown class 100: expected one of 3, 7, 100 \(or a class number 0..2\)$"):
        sample_labels(2, 100, names)
    assert class_indices("9,sneaker", ["t-shirt"] * 0 + [f"c{i}" for i in range(9)] + ["Sneaker"]) == [9, 9]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (np.array([b"\xff\xfe", b"ok"]), r"names: name b'\\xff\\xfe' is not UTF-8 text$"),
        (np.array(["b\x1b[31mred", "blue"]), r"names: class name 'b\\x1b\[31mred' holds a control or formatting"),
        (np.array(["a\x00b", "c"]), r"names: class name 'a\\x00b' holds a control or formatting character$"),
        (np.array(["\u202eevil", "c"]), r"names: class name '\\u202eevil' holds a control or formatting character$"),
    ],
    ids=["not-utf8", "escape", "nul", "bidi"],
)
def test_names_that_are_not_printable_text_are_refused_in_one_line(tmp_path, names, message):
    path = labelled(tmp_path / "names.npz", [0, 1] * 4, names)
    with pytest.raises(DataError, match=message) as info:
        load_dataset(str(path))
    text = str(info.value)
    assert text.startswith(f"{path}: names: ") and "\n" not in text and "\x1b" not in text and "\x00" not in text


def test_checking_fifty_thousand_classes_is_linear(tmp_path, capsys):
    k = 50_001
    path = labelled(tmp_path / "many.npz", np.arange(k) * 3, n=k)  # labels 0, 3, 6, ...: renumbered
    tic = time.perf_counter()
    ds = load_dataset(str(path))
    config = GANConfig(data_shape=(8, 8), n_classes=ds.n_classes, class_names=list(ds.class_names))
    config_again = GANConfig.from_json(config.to_json())  # what every later `sample` does
    lookup = sample_labels(2_500, [str(3 * (k - 1))] * 2_500, ds.class_names)
    assert time.perf_counter() - tic < 1.0
    assert ds.n_classes == k and config_again.class_names[-1] == str(3 * (k - 1)) and lookup[0] == k - 1
    tic = time.perf_counter()
    assert names_problem([f"n{i}" for i in range(200_000)]) == ""
    assert time.perf_counter() - tic < 1.0


@pytest.mark.parametrize(
    ("then", "now", "named"),
    [
        (dict(y=[0, 1, 2, 1] * 64, names=np.array(["cat", "dog", "fox"])),
         dict(y=[0, 1, 2, 1] * 64, names=np.array(["cat", "dog", "wolf"])), "('fox' is now 'wolf')"),
        (dict(y=[3, 7, 100, 7] * 64), dict(y=[4, 7, 100, 7] * 64), "('3' is now '4')"),
    ],
    ids=["renamed", "relabelled"],
)
def test_resuming_on_renamed_classes_is_refused(tmp_path, capsys, then, now, named):
    data = labelled(tmp_path / "pets.npz", **then)
    run = tmp_path / "run"
    assert cli.main(["train", "--dataset", str(data), "--conditional", "--conditioning", "concat", "--n-train", "256",
                     "--batch-size", "32", "--g-hidden", "16", "--d-hidden", "16", "--latent-dim", "4", "--no-eval",
                     "--steps", "2", "--out", str(run)]) == 0
    before = (run / "checkpoint.npz").read_bytes()
    labelled(data, **now)
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(run), "--steps", "4"]) == 2
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if line.startswith("tinygan ")]
    assert "Traceback" not in err and len(errors) == 1, err
    assert errors[0].startswith(f"tinygan train: error: --resume {run}: the class names of the training data (pets) "
                          f"changed since the run was saved {named}; resuming is refused"), errors
    assert (run / "checkpoint.npz").read_bytes() == before
