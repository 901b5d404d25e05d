"""A folder of PNG files as a dataset: layout, labels from sub-folders, mixed colour, and bad files."""

from __future__ import annotations

import struct
import zlib

import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest

from tinygan import DataError, load_dataset
from tinygan.data.folder import load_folder
from tinygan.io.png import png_bytes


def write_png(path, pixels):
    path.write_bytes(png_bytes(pixels))  # no fsync: many small files


RNG = np.random.default_rng(11)


def make_folder(root, classes=("cat", "dog"), per_class=3, shape=(6, 5, 3)):
    """Class sub-folders of random images; returns the images by class, in file order."""
    images = {}
    for name in classes:
        (root / name).mkdir(parents=True)
        images[name] = RNG.integers(0, 256, (per_class, *shape), dtype=np.uint8)
        for i, pixels in enumerate(images[name]):
            write_png(root / name / f"{i:03d}.png", pixels)
    return images


def test_class_sub_folders_give_labels_and_names(tmp_path):
    images = make_folder(tmp_path / "pets", classes=("dog", "cat", "bird"), per_class=2)
    ds = load_dataset(tmp_path / "pets")
    assert ds.name == "pets" and ds.kind == "image" and ds.value_range == (0.0, 255.0)
    assert ds.class_names == ("bird", "cat", "dog")  # sorted
    assert ds.x.shape == (6, 6, 5, 3) and ds.x.dtype == np.uint8
    np.testing.assert_array_equal(ds.labels, [0, 1, 2, 0, 1, 2])  # the classes in turn
    np.testing.assert_array_equal(ds.x[0], images["bird"][0])
    np.testing.assert_array_equal(ds.x[4], images["cat"][1])
    assert load_dataset(str(tmp_path / "pets") + "/", n=3).labels.tolist() == [0, 1, 2]


def test_a_folder_without_sub_folders_is_unlabelled(tmp_path):
    grey = RNG.integers(0, 256, (4, 7, 9), dtype=np.uint8)
    for i, pixels in enumerate(grey):
        write_png(tmp_path / f"{i}.png", pixels)
    (tmp_path / ".DS_Store").write_bytes(b"junk")  # hidden files are skipped
    ds = load_dataset(tmp_path)
    assert ds.labels is None and ds.class_names is None
    np.testing.assert_array_equal(ds.x, grey)


def test_grey_and_colour_mixed_become_colour(tmp_path):
    write_png(tmp_path / "a.png", np.full((3, 4), 7, np.uint8))
    rgb = RNG.integers(0, 256, (3, 4, 3), dtype=np.uint8)
    write_png(tmp_path / "b.png", rgb)
    x, labels, names = load_folder(tmp_path)
    assert x.shape == (2, 3, 4, 3) and labels is None and names is None
    assert (x[0] == 7).all()
    np.testing.assert_array_equal(x[1], rgb)


def test_many_files_are_read_by_threads_in_order(tmp_path):
    images = RNG.integers(0, 256, (600, 4, 4), dtype=np.uint8)
    for i, pixels in enumerate(images):
        write_png(tmp_path / f"{i:04d}.png", pixels)
    for workers in (1, 4):
        np.testing.assert_array_equal(load_folder(tmp_path, workers=workers)[0], images)


def _bad_png() -> bytes:
    ihdr = struct.pack(">IIBBBBB", 5, 6, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk  # a good header, then nothing


@pytest.mark.parametrize(
    "name, content, says",
    [
        ("dog/zz.png", b"GIF89a...", "not a PNG file"),
        ("dog/zz.png", "truncated", "truncated"),
        ("dog/zz.png", "header-only", "truncated PNG"),
        ("dog/zz.png", "odd-size", "image is 5x4 pixels, but 000.png is 5x6; all images of a dataset must be"),
        ("dog/notes.txt", b"hello", "not a .png file"),
        ("cat/sub", None, "a folder inside a class folder"),
        ("stray.png", "good", "a file beside class folders"),
    ],
)
def test_one_bad_file_is_named_in_one_line(tmp_path, name, content, says):
    root = tmp_path / "data"
    make_folder(root, shape=(6, 5))
    good = (root / "cat" / "000.png").read_bytes()
    target = root / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        target.mkdir()
    else:
        data = {"truncated": good[:-30], "header-only": _bad_png(), "good": good}.get(content, content)
        if content == "odd-size":
            buffer = tmp_path / "odd.png"
            write_png(buffer, np.zeros((4, 5), np.uint8))
            data = buffer.read_bytes()
        target.write_bytes(data)
    with pytest.raises(DataError) as info:
        load_dataset(root)
    message = str(info.value)
    assert message.startswith(f"{target}: ") and says in message and "\n" not in message


def test_empty_folders_are_refused(tmp_path):
    with pytest.raises(DataError, match="holds no PNG files"):
        load_dataset(tmp_path)
    (tmp_path / "cat").mkdir()
    with pytest.raises(DataError, match=r"cat: the class folder holds no PNG files"):
        load_dataset(tmp_path)


def test_class_names_that_clash_are_refused(tmp_path):
    make_folder(tmp_path, classes=("Cat", "cat"), per_class=1)
    with pytest.raises(DataError, match="class folders: class name 'cat' appears more than once"):
        load_dataset(tmp_path)


@hypothesis.settings(max_examples=40, deadline=None,
                     suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
@hypothesis.given(
    st.integers(0, 5), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=3),
    st.integers(1, 400),
)
def test_any_damage_to_one_file_is_named_or_read(tmp_path_factory, which, flips, cut):
    root = tmp_path_factory.mktemp("damaged")
    make_folder(root, per_class=3, shape=(4, 3))
    target = sorted(root.rglob("*.png"))[which]
    data = bytearray(target.read_bytes())
    for where, value in flips:
        data[where % len(data)] = value
    target.write_bytes(bytes(data[:cut]))
    try:
        ds = load_dataset(root)
    except DataError as e:
        assert str(e).startswith(f"{target}: ") and "\n" not in str(e)
        return
    assert ds.x.shape[:3] == (6, 4, 3)  # damage that left a readable image of the same size
