"""Tests for tinygan.data: procedural digits, IDX files, MNIST-style loading, mixtures, user files."""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygan.data import (
    DATASETS,
    DataError,
    Dataset,
    idx_bytes,
    load_dataset,
    make_digits,
    mixture_modes,
    parse_idx,
    read_idx,
    sources,
    write_idx,
)

# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real dataset locations and no network: cache, env and system roots all under tmp."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TINYGAN_DATA", raising=False)
    monkeypatch.setattr(sources, "SYSTEM_DATA_ROOTS", (str(tmp_path / "system"),))

    def no_network(url, timeout=None):
        raise AssertionError(f"test tried to download {url}")

    monkeypatch.setattr(sources, "_urlopen", no_network)
    return tmp_path


def _fake_split(folder, split="train", n=12, gz=True, seed=0):
    """Write small fake MNIST-style IDX files for a split; return (images, labels)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    prefix = "train" if split == "train" else "t10k"
    suffix = ".gz" if gz else ""
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return images, labels


class FakeResponse(io.BytesIO):
    """Stands in for urllib's HTTP response: readable, a context manager, with headers."""

    def __init__(self, payload: bytes):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


# --------------------------------------------------------------------------- digits


def test_digits_shape_dtype_and_metadata():
    ds = load_dataset("digits", n=200, seed=1)
    assert isinstance(ds, Dataset)
    assert ds.x.shape == (200, 28, 28) and ds.x.dtype == np.uint8
    assert ds.labels.shape == (200,) and ds.labels.dtype == np.int64
    assert ds.kind == "image" and ds.value_range == (0.0, 255.0)
    assert ds.sample_shape == (28, 28) and ds.n_features == 784 and len(ds) == 200
    assert ds.modes is None and ds.mode_std is None


def test_digits_default_is_digits_dataset():
    assert load_dataset(n=10).name == "digits"
    assert DATASETS == ("digits", "mnist", "fashion-mnist", "ring", "grid")


def test_digits_deterministic_per_seed_and_split():
    a = load_dataset("digits", n=100, seed=3)
    b = load_dataset("digits", n=100, seed=3)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.x, load_dataset("digits", n=100, seed=4).x)
    assert not np.array_equal(a.x, load_dataset("digits", n=100, seed=3, split="test").x)


@pytest.mark.parametrize("n", [1, 10, 205])
def test_digits_labels_balanced(n):
    ds = load_dataset("digits", n=n, seed=0)
    counts = np.bincount(ds.labels, minlength=10)
    assert counts.sum() == n and counts.max() - counts.min() <= 1


def test_digits_use_full_pixel_range_on_black_background():
    x, _ = make_digits(100, seed=0)
    assert x.min() == 0 and x.max() == 255
    assert np.all(x.reshape(100, -1).max(axis=1) == 255)  # every image reaches full white
    assert np.all(x[:, 0, :] < 128) and np.all(x[:, :, 0] < 128)  # border stays mostly dark
    mean = x.mean() / 255
    assert 0.05 < mean < 0.25  # MNIST's mean intensity is about 0.13


def test_digits_centred_like_mnist():
    x, _ = make_digits(300, seed=2)
    w = x.astype(np.float64)
    rows = (w.sum(axis=2) * np.arange(28)).sum(axis=1) / w.sum(axis=(1, 2))
    cols = (w.sum(axis=1) * np.arange(28)).sum(axis=1) / w.sum(axis=(1, 2))
    assert np.all(np.abs(rows - 13.5) < 2.5) and np.all(np.abs(cols - 13.5) < 2.5)


def test_digit_classes_are_distinguishable():
    # A nearest-class-mean classifier must separate the classes far above chance (10%).
    train = load_dataset("digits", n=2000, seed=0)
    test = load_dataset("digits", n=500, seed=0, split="test")
    xt = train.x.reshape(len(train), -1) / 255.0
    means = np.stack([xt[train.labels == d].mean(axis=0) for d in range(10)])
    xs = test.x.reshape(len(test), -1) / 255.0
    pred = np.argmin(((xs[:, None, :] - means[None]) ** 2).sum(axis=2), axis=1)
    assert (pred == test.labels).mean() > 0.7


# --------------------------------------------------------------------------- IDX files


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    arr = (np.arange(60) - 20).astype(dtype).reshape(3, 4, 5)
    path = tmp_path / f"a-idx3{suffix}"
    write_idx(path, arr)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, arr)


def test_idx_header_layout(tmp_path):
    write_idx(tmp_path / "l", np.array([7, 1, 2], dtype=np.uint8))
    raw = (tmp_path / "l").read_bytes()
    assert raw == bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 1, 2])


def _error_for(path, payload: bytes) -> str:
    path.write_bytes(payload)
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert path.name in message and "\n" not in message
    return message


GOOD = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))


def test_idx_errors_name_the_file(tmp_path):
    assert "truncated" in _error_for(tmp_path / "short-idx", GOOD[:-1])
    assert "truncated" in _error_for(tmp_path / "header-idx", GOOD[:6])
    assert "truncated" in _error_for(tmp_path / "tiny-idx", GOOD[:2])
    assert "magic" in _error_for(tmp_path / "magic-idx", b"\x01\x00" + GOOD[2:])
    assert "too long" in _error_for(tmp_path / "long-idx", GOOD + b"\x00")
    assert "type code" in _error_for(tmp_path / "code-idx", GOOD[:2] + b"\x07" + GOOD[3:])
    assert "0 dimensions" in _error_for(tmp_path / "zero-idx", b"\x00\x00\x08\x00")
    assert "truncated" in _error_for(tmp_path / "empty-idx", b"")


def test_idx_gzip_errors_name_the_file(tmp_path):
    packed = gzip.compress(GOOD)
    assert "gzip" in _error_for(tmp_path / "cut.gz", packed[: len(packed) // 2])
    bad = bytearray(packed)
    bad[12] ^= 0xFF  # inside the deflate stream
    _error_for(tmp_path / "flip.gz", bytes(bad))  # CRC or deflate error, whichever hits first
    assert "gzip" in _error_for(tmp_path / "junk.gz", b"\x1f\x8b" + b"junk" * 10)
    assert "gzip" in _error_for(tmp_path / "trail.gz", packed + b"garbage")
    assert "too long" in _error_for(tmp_path / "long.gz", gzip.compress(GOOD + b"\x01"))
    assert "truncated" in _error_for(tmp_path / "short.gz", gzip.compress(GOOD[:-1]))
    assert "magic" in _error_for(tmp_path / "plain.gz", b"not gzip at all")


def test_idx_huge_declared_size_is_rejected_without_allocating(tmp_path):
    # 4 dims of 2**32 - 1 float64s would be ~10**39 bytes; must fail fast on the size check.
    header = bytes([0, 0, 0x0E, 4]) + b"\xff\xff\xff\xff" * 4
    assert "truncated" in _error_for(tmp_path / "huge-idx", header + b"\x00" * 16)
    assert "truncated" in _error_for(tmp_path / "huge.gz", gzip.compress(header))
    empty_but_huge = bytes([0, 0, 0x0E, 3]) + b"\x00" * 4 + b"\xff\xff\xff\xff" * 2
    assert "unsupported" in _error_for(tmp_path / "empty-huge-idx", empty_but_huge)
    many_dims = bytes([0, 0, 0x08, 255]) + b"\xff" * 4 * 255
    assert len(_error_for(tmp_path / "dims-idx", many_dims)) < 300


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope-idx"):
        read_idx(tmp_path / "nope-idx")


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=64) | st.builds(lambda b: gzip.compress(b), st.binary(max_size=64)))
def test_parse_idx_fuzz_only_raises_data_error(payload):
    try:
        arr = parse_idx(payload, "fuzz")
    except DataError as exc:
        assert "fuzz" in str(exc)
    else:
        assert isinstance(arr, np.ndarray)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(GOOD) - 1), st.integers(1, 255), st.booleans())
def test_parse_idx_mutations_only_raise_data_error(pos, xor, compress):
    payload = bytearray(gzip.compress(GOOD, mtime=0) if compress else GOOD)
    payload[pos % len(payload)] ^= xor
    try:
        parse_idx(bytes(payload), "mutant")
    except DataError:
        pass


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x0A]),
    st.lists(st.sampled_from([0, 1, 2, 3, 2**31, 2**32 - 1]), min_size=0, max_size=5),
    st.binary(max_size=40),
    st.booleans(),
)
def test_parse_idx_structured_headers(code, dims, body, compress):
    payload = bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + body
    if compress:
        payload = gzip.compress(payload)
    try:
        arr = parse_idx(payload, "hdr")
    except DataError:
        return
    assert arr.shape == tuple(dims)


# --------------------------------------------------------------------------- MNIST-style loading


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_from_data_dir(isolated, gz):
    images, labels = _fake_split(isolated / "mine", gz=gz)
    ds = load_dataset("fashion-mnist", data_dir=str(isolated / "mine"))
    assert ds.name == "fashion-mnist" and ds.kind == "image"
    assert ds.x.dtype == np.uint8 and ds.value_range == (0.0, 255.0)
    assert ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.x, images)
    np.testing.assert_array_equal(ds.labels, labels)


def test_mnist_subfolder_test_split_and_n(isolated):
    _fake_split(isolated / "root" / "mnist", split="train", n=12, seed=1)
    test_images, _ = _fake_split(isolated / "root" / "mnist", split="test", n=7, seed=2)
    ds = load_dataset("mnist", data_dir=str(isolated / "root"), split="test", n=5)
    assert len(ds) == 5
    np.testing.assert_array_equal(ds.x, test_images[:5])
    with pytest.raises(DataError, match="n=50"):
        load_dataset("mnist", data_dir=str(isolated / "root"), n=50)


def test_mnist_alternate_file_spelling(isolated):
    folder = isolated / "alt"
    folder.mkdir()
    write_idx(folder / "train-images.idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    write_idx(folder / "train-labels.idx1-ubyte", np.zeros(3, np.uint8))
    assert len(load_dataset("mnist", data_dir=str(folder))) == 3


def test_env_var_cache_and_system_roots_are_searched(isolated, monkeypatch):
    _fake_split(isolated / "env" / "fashion-mnist", n=4)
    monkeypatch.setenv("TINYGAN_DATA", str(isolated / "env"))
    assert len(load_dataset("fashion-mnist")) == 4
    monkeypatch.delenv("TINYGAN_DATA")
    _fake_split(isolated / "cache" / "tinygan" / "fashion-mnist", n=5)
    assert len(load_dataset("fashion-mnist")) == 5
    _fake_split(isolated / "system" / "mnist", n=6)
    assert len(load_dataset("mnist")) == 6


def test_mismatched_labels_are_reported(isolated):
    folder = isolated / "bad"
    _fake_split(folder, n=5)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz"):
        load_dataset("mnist", data_dir=str(folder))


def test_corrupt_dataset_file_is_named(isolated):
    folder = isolated / "corrupt"
    _fake_split(folder, n=5)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bbroken")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load_dataset("fashion-mnist", data_dir=str(folder))


def test_not_found_without_download_says_where_it_looked(isolated):
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist", data_dir=str(isolated / "nowhere"), download=False)
    message = str(info.value)
    assert str(isolated / "nowhere") in message
    assert str(isolated / "cache" / "tinygan" / "fashion-mnist") in message
    assert str(isolated / "system" / "fashion-mnist") in message
    assert "apt-get install dataset-fashion-mnist" in message and "--data-dir" in message


def test_offline_download_failure(isolated, monkeypatch):
    def offline(url, timeout=None):
        raise OSError("network is unreachable")

    monkeypatch.setattr(sources, "_urlopen", offline)
    with pytest.raises(DataError) as info:
        load_dataset("mnist", data_dir=str(isolated / "nowhere"))
    message = str(info.value)
    assert "network is unreachable" in message and "ossci-datasets" in message
    assert str(isolated / "nowhere") in message and "--data-dir" in message
    assert "\n" not in message


def test_checksum_mismatch_leaves_no_file(isolated, monkeypatch, capsys):
    monkeypatch.setattr(sources, "_urlopen", lambda url, timeout=None: FakeResponse(b"not mnist"))
    with pytest.raises(DataError, match="checksum"):
        load_dataset("mnist")
    cache = isolated / "cache" / "tinygan" / "mnist"
    assert list(cache.iterdir()) == []  # neither the file nor a temp file remains


def test_download_verifies_and_caches(isolated, monkeypatch, capsys):
    payloads = {
        "train-images-idx3-ubyte.gz": gzip.compress(
            idx_bytes(np.full((3, 28, 28), 9, np.uint8))
        ),
        "train-labels-idx1-ubyte.gz": gzip.compress(idx_bytes(np.arange(3, dtype=np.uint8))),
    }
    md5s = {name: hashlib.md5(p).hexdigest() for name, p in payloads.items()}
    mirror = "https://example.invalid/mnist/"
    monkeypatch.setitem(sources.IDX_SOURCES, "mnist", (mirror, md5s))
    fetched = []

    def fake_urlopen(url, timeout=None):
        fetched.append(url)
        return FakeResponse(payloads[url.removeprefix(mirror)])

    monkeypatch.setattr(sources, "_urlopen", fake_urlopen)
    ds = load_dataset("mnist")
    assert len(ds) == 3 and ds.x.max() == 9
    assert sorted(fetched) == sorted(mirror + name for name in payloads)
    assert "downloading" in capsys.readouterr().err  # progress bar on stderr
    cache = isolated / "cache" / "tinygan" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(payloads)
    fetched.clear()
    load_dataset("mnist")  # second load comes from the cache
    assert fetched == []


def test_published_checksums_are_well_formed():
    for mirror, md5s in sources.IDX_SOURCES.values():
        assert mirror.startswith("http") and len(md5s) == 4
        assert all(len(h) == 32 and int(h, 16) >= 0 for h in md5s.values())


# --------------------------------------------------------------------------- 2D mixtures


@pytest.mark.parametrize("name,k,std", [("ring", 8, 0.01), ("grid", 25, 0.05)])
def test_mixtures(name, k, std):
    ds = load_dataset(name, n=5000, seed=0)
    assert ds.x.shape == (5000, 2) and ds.x.dtype == np.float32
    assert ds.kind == "points" and ds.modes.shape == (k, 2) and ds.mode_std == std
    assert ds.labels.min() == 0 and ds.labels.max() == k - 1
    dist = np.linalg.norm(ds.x - ds.modes[ds.labels], axis=1)
    assert np.all(dist < 5 * std)
    assert ds.value_range == (float(ds.x.min()), float(ds.x.max()))
    counts = np.bincount(ds.labels, minlength=k)
    assert counts.min() > 0.5 * 5000 / k  # uniform choice of mode


def test_mixture_geometry():
    ring, ring_std = mixture_modes("ring")
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 1.0)
    grid, grid_std = mixture_modes("grid")
    assert sorted(set(grid[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert (ring_std, grid_std) == (0.01, 0.05)


def test_mixture_defaults_and_splits():
    assert len(load_dataset("ring")) == 100_000
    a = load_dataset("grid", n=100, seed=1)
    np.testing.assert_array_equal(a.x, load_dataset("grid", n=100, seed=1).x)
    assert not np.array_equal(a.x, load_dataset("grid", n=100, seed=1, split="test").x)


# --------------------------------------------------------------------------- user files


def test_user_uint8_images(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (6, 10, 12), dtype=np.uint8)
    np.save(tmp_path / "faces.npy", arr)
    ds = load_dataset(str(tmp_path / "faces.npy"))
    assert ds.kind == "image" and ds.x.dtype == np.uint8 and ds.value_range == (0.0, 255.0)
    assert ds.sample_shape == (10, 12) and ds.labels is None and ds.name == "faces"
    np.testing.assert_array_equal(ds.x, arr)
    assert len(load_dataset(tmp_path / "faces.npy", n=2)) == 2


def test_user_flat_square_uint8_becomes_image(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((3, 784), np.uint8))
    ds = load_dataset(str(tmp_path / "flat.npy"))
    assert ds.kind == "image" and ds.sample_shape == (28, 28)
    np.save(tmp_path / "vec.npy", np.zeros((3, 5), np.uint8))
    ds = load_dataset(str(tmp_path / "vec.npy"))
    assert ds.kind == "points" and ds.sample_shape == (5,) and ds.x.dtype == np.uint8


def test_user_float_points_npz(tmp_path):
    pts = np.random.default_rng(0).random((50, 2))
    np.savez(tmp_path / "pts.npz", points=pts)
    ds = load_dataset(str(tmp_path / "pts.npz"))
    assert ds.kind == "points" and ds.x.dtype == np.float32 and ds.value_range == (0.0, 1.0)
    np.testing.assert_allclose(ds.x, pts, rtol=1e-6)


def test_user_float_images(tmp_path):
    np.save(tmp_path / "f.npy", np.full((4, 8, 8), 0.5, np.float16))
    ds = load_dataset(str(tmp_path / "f.npy"))
    assert ds.kind == "image" and ds.x.dtype == np.float32 and ds.value_range == (0.0, 1.0)


def _user_error(path, message_part):
    with pytest.raises(DataError) as info:
        load_dataset(str(path))
    message = str(info.value)
    assert path.name in message and message_part in message and "\n" not in message


def test_user_file_errors(tmp_path):
    _user_error(tmp_path / "missing.npy", "not found")
    (tmp_path / "garbage.npy").write_bytes(b"this is not numpy")
    _user_error(tmp_path / "garbage.npy", "cannot load")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    _user_error(tmp_path / "objects.npy", "pickled")
    np.savez(tmp_path / "objz.npz", a=np.array([[1, None]], dtype=object))
    _user_error(tmp_path / "objz.npz", "pickled")
    np.savez(tmp_path / "none.npz")
    _user_error(tmp_path / "none.npz", "exactly one array")
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 2)), b=np.zeros((2, 2)))
    _user_error(tmp_path / "two.npz", "exactly one array")
    np.save(tmp_path / "vector.npy", np.zeros(5, np.uint8))
    _user_error(tmp_path / "vector.npy", "expected shape")
    np.save(tmp_path / "four.npy", np.zeros((2, 2, 2, 2), np.uint8))
    _user_error(tmp_path / "four.npy", "expected shape")
    np.save(tmp_path / "empty.npy", np.zeros((0, 4), np.float32))
    _user_error(tmp_path / "empty.npy", "empty")
    np.save(tmp_path / "nan.npy", np.array([[0.5, np.nan]]))
    _user_error(tmp_path / "nan.npy", "NaN")
    np.save(tmp_path / "range.npy", np.array([[0.5, 1.5]]))
    _user_error(tmp_path / "range.npy", "[0, 1]")
    np.save(tmp_path / "ints.npy", np.zeros((2, 2), np.int32))
    _user_error(tmp_path / "ints.npy", "unsupported dtype")
    np.save(tmp_path / "bools.npy", np.zeros((2, 2), bool))
    _user_error(tmp_path / "bools.npy", "unsupported dtype")
    (tmp_path / "table.csv").write_text("1,2\n")
    _user_error(tmp_path / "table.csv", ".npy or .npz")


def test_user_npz_member_that_is_not_an_array(tmp_path):
    with zipfile.ZipFile(tmp_path / "notes.npz", "w") as z:  # np.load returns such a member as bytes
        z.writestr("notes.txt", b"hello")
    _user_error(tmp_path / "notes.npz", "cannot load array 'notes.txt' (not a .npy member)")


# --------------------------------------------------------------------------- one check of samples

_NAN = np.full((6, 4, 4), 0.5, np.float32)
_NAN[2, 1, 1] = np.nan
_OBJECTS = np.empty((6, 4, 4), dtype=object)
_OBJECTS[...] = 0.5
BAD_SAMPLES = {  # name: (array, what the file route says, what fit says, or None where they agree)
    "nan": (_NAN, "contains NaN or infinite values", None),
    "range": (np.full((6, 4, 4), 1.5), "float values must lie in [0, 1], found range [1.5, 1.5]", None),
    "int": (np.zeros((6, 4, 4), np.int32), "unsupported dtype int32", None),
    "no-samples": (np.zeros((0, 4, 4), np.uint8), "array is empty (shape (0, 4, 4))", "with N > 0, got (0, 4, 4)"),
    "empty-dim": (np.zeros((6, 4, 0), np.uint8), "array is empty (shape (6, 4, 0))", "got (6, 4, 0)"),
    "objects": (_OBJECTS, "pickled", "unsupported dtype object"),
    "1-D": (np.zeros(16, np.uint8), "expected shape (N, D), (N, H, W) or (N, H, W, C) with C = 1 or 3, got (16,)",
            "got (16,)"),
}


@pytest.mark.parametrize("case", BAD_SAMPLES)
def test_bad_samples_are_refused_alike_from_a_file_and_by_fit(tmp_path, case):
    from tinygan.data.validate import check_samples

    array, file_says, fit_says = BAD_SAMPLES[case]
    path = tmp_path / "samples.npy"
    np.save(path, array, allow_pickle=True)  # the object array goes in pickled, as users would save it
    with pytest.raises(DataError) as from_file:
        load_dataset(path)
    with pytest.raises(DataError) as from_fit:
        check_samples(array, name="training data", data_shape=(4, 4), kind="image")
    for error, name, says in [(from_file, str(path), file_says), (from_fit, "training data", fit_says or file_says)]:
        message = str(error.value)
        assert message.startswith(f"{name}: ") and says in message and "\n" not in message


def test_check_samples_rules():
    from tinygan.data.validate import check_samples

    points = np.array([[-3.0, 7.5], [0.0, 1.0]])
    np.testing.assert_array_equal(check_samples(points, "p", (2,), "points"), points)  # any finite value
    with pytest.raises(DataError, match=r"^p: float values must lie in \[0, 1\]"):
        check_samples(points, "p")  # kind not known (a user's file): floats are intensities
    with pytest.raises(DataError, match=r"^p: expected shape \(N, 3\) with N > 0, got \(2, 2\)$"):
        check_samples(points, "p", (3,), "points")
    with pytest.raises(DataError, match=r"^z: array is empty \(shape \(3, 0\)\)$"):
        check_samples(np.zeros((3, 0), np.float32), "z", (0,), "points")
    images = np.zeros((5, 2, 3), np.uint8)
    flat = check_samples(images, "i", (2, 3), "image")
    assert flat.shape == (5, 6) and np.shares_memory(flat, images)
    assert check_samples(images, "i") is images


def test_bad_arguments():
    with pytest.raises(DataError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")
    with pytest.raises(DataError, match="split"):
        load_dataset("digits", split="valid")
    for bad_n in (0, -3, 2.5):
        with pytest.raises(DataError, match="positive integer"):
            load_dataset("digits", n=bad_n)
