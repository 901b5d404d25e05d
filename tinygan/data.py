"""Datasets for tinygan: procedural digits, MNIST / Fashion-MNIST (IDX files), 2D Gaussian
mixtures and user-supplied .npy/.npz arrays.

Image data stays uint8 (N, H, W); training code converts mini-batches to floats on the fly
so the full dataset is never materialised as floats.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import struct
import sys
import urllib.request
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from .arrayfile import Wording, read_array
from .errors import DataError  # still importable from here, as before it moved
from .files import atomic_file

DATASETS = ("digits", "mnist", "fashion-mnist", "ring", "grid")
SPLITS = ("train", "test")


@dataclass
class Dataset:
    """An in-memory dataset.

    ``x`` is uint8 (N, H, W) for byte images, float32 for everything else. ``value_range`` is
    the range of what the values mean: (0, 255) for uint8 images, (0, 1) for float images,
    the data range for point clouds.
    """

    name: str
    x: np.ndarray
    labels: np.ndarray | None
    kind: str
    value_range: tuple[float, float]
    modes: np.ndarray | None = None
    mode_std: float | None = None

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. (28, 28) or (2,)."""
        return tuple(self.x.shape[1:])

    @property
    def n_features(self) -> int:
        """Number of values in one sample."""
        return int(math.prod(self.sample_shape))

    def __len__(self) -> int:
        return int(self.x.shape[0])


# =========================================================================== IDX files

# IDX type code -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("="): code for code, dt in _IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
# Longest possible IDX header: magic (4 bytes) + 255 dimensions of 4 bytes.
_IDX_MAX_HEADER = 4 + 4 * 255


def _gunzip(data: bytes, limit: int, name: str) -> bytes:
    """Decompress gzip ``data`` but stop after ``limit + 1`` output bytes.

    The cap means a corrupt or hostile file can never make us allocate more than what its
    header promises (plus one byte, enough to notice that the file is too long).
    """
    out = bytearray()
    pending = data
    while True:
        decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            while True:
                # max_length must fit a C ssize_t even when a header declares absurd sizes.
                budget = min(limit + 1 - len(out), sys.maxsize)
                out += decomp.decompress(pending, budget)
                if len(out) > limit or decomp.eof:
                    break
                pending = decomp.unconsumed_tail
                if not pending:
                    raise DataError(f"{name}: truncated gzip data (unexpected end of file)")
        except zlib.error as exc:
            raise DataError(f"{name}: corrupt gzip data ({exc})") from None
        if len(out) > limit:
            return bytes(out)
        pending = decomp.unused_data
        # Concatenated gzip members are legal; trailing zero padding is tolerated like gzip(1).
        if not pending.startswith(_GZIP_MAGIC):
            if pending.strip(b"\0"):
                raise DataError(f"{name}: corrupt gzip data (trailing garbage)")
            return bytes(out)


def _parse_idx_header(head: bytes, name: str) -> tuple[np.dtype, tuple[int, ...], int]:
    """Return (dtype, shape, header length) from the first bytes of an IDX file."""
    if len(head) < 4:
        raise DataError(f"{name}: truncated IDX file ({len(head)} bytes, header needs 4)")
    if head[0] != 0 or head[1] != 0:
        raise DataError(f"{name}: not an IDX file (bad magic bytes {head[:4].hex()})")
    code, ndim = head[2], head[3]
    if code not in _IDX_DTYPES:
        raise DataError(f"{name}: unknown IDX data type code 0x{code:02x}")
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(head) < header_len:
        raise DataError(f"{name}: truncated IDX header ({ndim} dimensions declared)")
    shape = struct.unpack(f">{ndim}I", head[4:header_len])
    return _IDX_DTYPES[code], shape, header_len


def _describe_shape(shape: tuple[int, ...]) -> str:
    """Shape for error messages, abbreviated when a corrupt header declares many dimensions."""
    if len(shape) <= 4:
        return f"shape {shape}"
    return f"a {len(shape)}-D shape ({shape[0]}, {shape[1]}, ...)"


def _describe_bytes(n: int) -> str:
    return f"{n} bytes" if n < 10**15 else "more than 10**15 bytes"


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse raw or gzip-compressed IDX bytes; every problem raises DataError naming ``name``."""
    if data.startswith(_GZIP_MAGIC):
        dtype, shape, header_len = _parse_idx_header(_gunzip(data, _IDX_MAX_HEADER, name), name)
        expected = header_len + math.prod(shape) * dtype.itemsize
        data = _gunzip(data, expected, name)
    else:
        dtype, shape, header_len = _parse_idx_header(data, name)
        expected = header_len + math.prod(shape) * dtype.itemsize
    # Compare declared and actual sizes before touching the payload, so a bogus header can
    # never trigger a huge allocation.
    if len(data) != expected:
        if len(data) < expected:
            problem, actual = "truncated IDX file", f"only {len(data)} bytes are present"
        else:  # for gzip input only expected + 1 bytes were decompressed, so say "more"
            problem, actual = "IDX file too long", "the file holds more"
        raise DataError(
            f"{name}: {problem} (header declares {_describe_shape(shape)}, "
            f"needing {_describe_bytes(expected)}; {actual})"
        )
    flat = np.frombuffer(data, dtype=dtype, offset=header_len)
    try:
        array = flat.reshape(shape)
    except ValueError:  # an empty shape like (0, 2**32-1, 2**32-1) numpy cannot represent
        raise DataError(
            f"{name}: IDX header declares an unsupported {_describe_shape(shape)}"
        ) from None
    return array.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or .gz, detected from content) into a native-endian array."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc.strerror or exc})") from None
    return parse_idx(data, str(path))


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialise an array as raw IDX bytes (dtype must be one IDX supports)."""
    arr = np.asarray(array)
    code = _IDX_CODES.get(arr.dtype.newbyteorder("="))
    if code is None:
        raise DataError(f"write_idx: dtype {arr.dtype} has no IDX type code")
    if not 1 <= arr.ndim <= 255:
        raise DataError(f"write_idx: array must have 1..255 dimensions, got {arr.ndim}")
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(_IDX_DTYPES[code]).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write an array as an IDX file; gzip-compressed when the path ends in .gz."""
    data = idx_bytes(array)
    if str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    Path(path).write_bytes(data)


# =========================================================================== MNIST-style sets

_MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_FASHION_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

# Download sources and the MD5 sums published for the official .gz files.
IDX_SOURCES: dict[str, tuple[str, dict[str, str]]] = {
    "mnist": (
        _MNIST_MIRROR,
        {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion-mnist": (
        _FASHION_MIRROR,
        {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
}

# System-wide dataset roots, searched as <root>/<name>. Debian's dataset-fashion-mnist
# package installs /usr/share/datasets/fashion-mnist/*.gz. Tests monkeypatch this tuple.
SYSTEM_DATA_ROOTS: tuple[str, ...] = ("/usr/share/datasets", "/usr/local/share/datasets")

_SPLIT_PREFIX = {"train": "train", "test": "t10k"}

# Seam for tests: replaced by a fake so no test ever touches the network.
_urlopen = urllib.request.urlopen


def _idx_basenames(split: str) -> tuple[str, str]:
    """Canonical (images, labels) file stems for a split, without .gz."""
    prefix = _SPLIT_PREFIX[split]
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _find_idx_file(folder: Path, stem: str) -> Path | None:
    """Find ``stem`` in folder as .gz or raw; also the 'train-images.idx3-ubyte' spelling."""
    alt = stem.replace("-idx", ".idx")
    for candidate in (stem + ".gz", stem, alt + ".gz", alt):
        path = folder / candidate
        if path.is_file():
            return path
    return None


def cache_dir(name: str) -> Path:
    """Per-user download cache for a dataset: $XDG_CACHE_HOME/tinygan/<name>."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tinygan" / name


def _search_dirs(name: str, data_dir: str | os.PathLike | None) -> list[Path]:
    """Folders searched for IDX files, in priority order."""
    dirs: list[Path] = []
    for root in (data_dir, os.environ.get("TINYGAN_DATA")):
        if root:
            dirs += [Path(root), Path(root) / name]
    dirs.append(cache_dir(name))
    dirs += [Path(root) / name for root in SYSTEM_DATA_ROOTS]
    return dirs


def _locate_idx(name: str, split: str, dirs: list[Path]) -> tuple[Path, Path] | None:
    """First folder holding both the image and label file of the split."""
    img_stem, lbl_stem = _idx_basenames(split)
    for folder in dirs:
        images, labels = _find_idx_file(folder, img_stem), _find_idx_file(folder, lbl_stem)
        if images and labels:
            return images, labels
    return None


def _progress(label: str, done: int, total: int | None) -> None:
    """Minimal one-line progress bar on stderr."""
    if total:
        frac = min(done / total, 1.0)
        bar = "#" * int(frac * 30)
        msg = f"\r{label} [{bar:<30}] {frac:4.0%} of {total / 1e6:.1f} MB"
    else:
        msg = f"\r{label} {done / 1e6:.1f} MB"
    sys.stderr.write(msg)
    sys.stderr.flush()


def download_file(url: str, dest: Path, md5: str | None = None) -> None:
    """Download url to dest atomically (temp file in the same folder, fsync, os.replace).

    The MD5 is checked before the file is moved into place, so a failed or corrupted
    download never leaves a file at ``dest``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.md5()
    with atomic_file(dest) as out, _urlopen(url, timeout=60) as response:
        headers = getattr(response, "headers", None)
        length = headers.get("Content-Length") if headers is not None else None
        total = int(length) if length and str(length).isdigit() else None
        done = 0
        while chunk := response.read(1 << 16):
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            _progress(f"downloading {dest.name}", done, total)
        sys.stderr.write("\n")
        if md5 is not None and digest.hexdigest() != md5:  # raising here leaves no file at dest
            raise DataError(
                f"{url}: checksum mismatch (md5 {digest.hexdigest()}, expected {md5}); "
                "the download is corrupt, try again"
            )


def _download_idx(name: str, split: str) -> tuple[Path, Path]:
    """Download the split's two files into the user cache and return their paths."""
    mirror, md5s = IDX_SOURCES[name]
    folder = cache_dir(name)
    paths = []
    for stem in _idx_basenames(split):
        filename = stem + ".gz"
        dest = folder / filename
        if not dest.is_file():
            download_file(mirror + filename, dest, md5s[filename])
        paths.append(dest)
    return paths[0], paths[1]


def _not_found_message(name: str, split: str, dirs: list[Path], reason: str) -> str:
    img_stem, lbl_stem = _idx_basenames(split)
    hint = "put the files in --data-dir DIR or $TINYGAN_DATA"
    if name == "fashion-mnist":
        hint = "run `apt-get install dataset-fashion-mnist`, or " + hint
    looked = ", ".join(str(d) for d in dict.fromkeys(dirs))
    return (
        f"{name}: {img_stem}[.gz] and {lbl_stem}[.gz] not found in {looked}; {reason}; "
        f"to provide them, {hint}"
    )


def _load_idx_dataset(
    name: str, data_dir: str | os.PathLike | None, split: str, download: bool
) -> Dataset:
    dirs = _search_dirs(name, data_dir)
    found = _locate_idx(name, split, dirs)
    if found is None:
        if not download:
            raise DataError(_not_found_message(name, split, dirs, "downloading is disabled"))
        mirror = IDX_SOURCES[name][0]
        try:
            found = _download_idx(name, split)
        except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
            reason = f"download from {mirror} failed ({exc or type(exc).__name__})"
            raise DataError(_not_found_message(name, split, dirs, reason)) from None
    images, labels = read_idx(found[0]), read_idx(found[1])
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{found[0]}: expected uint8 images of shape (N, H, W), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{found[1]}: expected {len(images)} labels to match {found[0].name}, "
            f"got shape {labels.shape}"
        )
    return Dataset(name, images, labels.astype(np.int64), "image", (0.0, 255.0))


# =========================================================================== procedural digits

# Digits are drawn from stroke templates in a unit box: y runs from -0.5 (top) to +0.5
# (bottom), x is centred on 0. Rendering maps a template height of 1 to about 20 pixels,
# like MNIST's 20x20 digit box inside the 28x28 frame.

_IMG = 28
_DIGIT_BOX = 20.0
_MAX_SEG = 0.07  # template units per rasterised segment (about 1.5 px)


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float) -> np.ndarray:
    """Elliptic arc from angle a0 to a1 (degrees, counter-clockwise as seen on screen)."""
    t = np.radians(np.linspace(a0, a1, max(8, int(abs(a1 - a0) / 6))))
    return np.stack([cx + rx * np.cos(t), cy - ry * np.sin(t)], axis=1)


def _bezier(*ctrl: tuple[float, float]) -> np.ndarray:
    """Bezier curve with the given control points (any degree), by de Casteljau."""
    t = np.linspace(0.0, 1.0, 16)[:, None, None]
    pts = np.broadcast_to(np.array(ctrl, dtype=np.float64), (len(t), len(ctrl), 2))
    while pts.shape[1] > 1:
        pts = pts[:, :-1] * (1 - t) + pts[:, 1:] * t
    return pts[:, 0]


def _poly(*pts: tuple[float, float]) -> np.ndarray:
    return np.array(pts, dtype=np.float64)


def _join(*parts: np.ndarray) -> np.ndarray:
    """Concatenate pieces into one continuous stroke."""
    return np.concatenate(parts, axis=0)


def _figure_eight(top_w: float, bottom_w: float) -> np.ndarray:
    """A single-stroke 8 that crosses itself in the middle, like a handwritten one."""
    t = np.linspace(0.0, 2 * np.pi, 90)
    width = np.where(np.cos(t) > 0, top_w, bottom_w)
    x = width * np.sin(2 * t)
    y = -0.5 * np.cos(t) + 0.04 * np.sin(t)
    return np.stack([x, y], axis=1)


def _digit_templates() -> dict[int, list[tuple[float, list[np.ndarray]]]]:
    """Per digit: list of (weight, strokes) variants; each stroke is a polyline."""
    zero = _arc(0.0, 0.0, 0.30, 0.5, 100, 460)  # a little past 360 degrees: pen overlap
    one = _poly((0.02, -0.5), (-0.02, 0.5))
    one_flag = _poly((-0.14, -0.32), (0.03, -0.5), (0.0, 0.5))
    one_base = _poly((-0.14, 0.5), (0.16, 0.5))
    two = _join(_arc(0.0, -0.24, 0.27, 0.26, 160, -20), _poly((-0.28, 0.5), (0.3, 0.5)))
    three = _join(_arc(0.0, -0.25, 0.25, 0.25, 150, -95), _arc(0.0, 0.24, 0.28, 0.26, 95, -150))
    four_open = [_poly((-0.22, -0.5), (-0.26, 0.1), (0.3, 0.1)), _poly((0.15, -0.5), (0.13, 0.5))]
    four_closed = _poly((0.13, 0.5), (0.14, -0.5), (-0.3, 0.12), (0.3, 0.12))
    five_bar = _poly((0.27, -0.5), (-0.18, -0.5))
    five_body = _join(_poly((-0.18, -0.5), (-0.22, -0.06)), _arc(0.0, 0.2, 0.28, 0.29, 125, -150))
    six_neck = _bezier((0.2, -0.5), (-0.12, -0.32), (-0.3, -0.02), (-0.28, 0.22))
    six = _join(six_neck, _arc(0.0, 0.22, 0.28, 0.27, 180, 520))
    seven = _poly((-0.28, -0.5), (0.3, -0.5), (-0.04, 0.5))
    seven_bar = _poly((-0.02, 0.02), (0.26, 0.02))
    nine_loop = _arc(0.0, -0.24, 0.25, 0.25, 10, 370)
    nine = _join(nine_loop, _poly((0.25, -0.2), (0.2, 0.5)))
    nine_hook = _join(nine_loop, _bezier((0.25, -0.2), (0.24, 0.3), (0.1, 0.5), (-0.1, 0.45)))
    return {
        0: [(1.0, [zero])],
        1: [(0.6, [one]), (0.3, [one_flag]), (0.1, [one_flag, one_base])],
        2: [(1.0, [two])],
        3: [(1.0, [three])],
        4: [(0.6, four_open), (0.4, [four_closed])],
        5: [(1.0, [five_bar, five_body])],
        6: [(1.0, [six])],
        7: [(0.7, [seven]), (0.3, [seven, seven_bar])],
        8: [(1.0, [_figure_eight(0.22, 0.28)])],
        9: [(0.7, [nine]), (0.3, [nine_hook])],
    }


def _resample(stroke: np.ndarray, max_seg: float) -> np.ndarray:
    """Resample a polyline at equal arc-length steps no longer than ``max_seg``."""
    seg = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(1, math.ceil(cum[-1] / max_seg))
    s = np.linspace(0.0, cum[-1], n + 1)
    return np.stack([np.interp(s, cum, stroke[:, 0]), np.interp(s, cum, stroke[:, 1])], axis=1)


@cache
def _template_segments() -> dict[int, list[tuple[float, np.ndarray, np.ndarray]]]:
    """Per digit: list of (weight, vertices (P, 2), segment index pairs (S, 2))."""
    out: dict[int, list[tuple[float, np.ndarray, np.ndarray]]] = {}
    for digit, variants in _digit_templates().items():
        out[digit] = []
        total = sum(w for w, _ in variants)
        for weight, strokes in variants:
            verts, pairs, base = [], [], 0
            for stroke in strokes:
                pts = _resample(stroke, _MAX_SEG)
                idx = np.arange(base, base + len(pts) - 1)
                pairs.append(np.stack([idx, idx + 1], axis=1))
                verts.append(pts)
                base += len(pts)
            out[digit].append((weight / total, np.concatenate(verts), np.concatenate(pairs)))
    return out


def _jitter_vertices(verts: np.ndarray, rng: np.random.Generator, m: int) -> np.ndarray:
    """Place m copies of template vertices in pixel space with handwriting-like jitter.

    A smooth random warp (sum of low-frequency sines) bends strokes, then a random affine
    map (rotation, slant, scale, aspect) follows. Coordinates are pixels relative to the
    template origin; ``_centre`` then moves each copy into the frame.
    """
    v = np.broadcast_to(verts, (m, *verts.shape)).copy()
    for _ in range(2):
        freq = rng.uniform(-1.6, 1.6, size=(m, 2, 2))  # cycles per unit: (image, out, in)
        phase = rng.uniform(0, 2 * np.pi, size=(m, 1, 2))
        amp = rng.uniform(0.0, 0.035, size=(m, 1, 2))
        arg = 2 * np.pi * np.einsum("mpk,mck->mpc", v, freq) + phase
        v += amp * np.sin(arg)
    angle = np.radians(rng.uniform(-12, 12, m))
    slant = rng.uniform(-0.15, 0.35, m)  # positive: top leans right, as most handwriting
    scale = _DIGIT_BOX * rng.uniform(0.82, 1.05, m)
    aspect = rng.uniform(0.8, 1.2, m)
    cos, sin = np.cos(angle), np.sin(angle)
    # x' = x * aspect - slant * y, then rotate, then scale.
    sx = v[..., 0] * aspect[:, None] - slant[:, None] * v[..., 1]
    sy = v[..., 1]
    px = scale[:, None] * (cos[:, None] * sx - sin[:, None] * sy)
    py = scale[:, None] * (sin[:, None] * sx + cos[:, None] * sy)
    return np.stack([px, py], axis=-1)


def _centre(pts: np.ndarray, pairs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shift each copy so its length-weighted stroke centroid lands near the image centre.

    MNIST centres digits by pixel centre of mass; the stroke centroid is a cheap stand-in.
    """
    a, b = pts[:, pairs[:, 0]], pts[:, pairs[:, 1]]
    length = np.linalg.norm(b - a, axis=-1, keepdims=True)
    centroid = ((a + b) / 2 * length).sum(axis=1) / np.maximum(length.sum(axis=1), 1e-9)
    target = (_IMG - 1) / 2 + rng.uniform(-0.7, 0.7, size=(len(pts), 2))
    return pts + (target - centroid)[:, None, :]


def _rasterise(a: np.ndarray, b: np.ndarray, radius: np.ndarray, soft: np.ndarray) -> np.ndarray:
    """Anti-aliased thick segments into (m, 28, 28) float32 intensities in [0, 1].

    Each segment only touches a small fixed-size window around it, so the cost is
    O(m * segments * window) rather than O(m * segments * 784). Intensity falls off
    smoothly with the distance from the nearest segment; overlaps combine by maximum.
    """
    m, n_seg = a.shape[:2]
    reach = float(np.max(radius + soft)) + _MAX_SEG * _DIGIT_BOX * 1.3 / 2
    win = math.ceil(2 * reach) + 2
    offs = np.arange(win)
    out = np.zeros(m * _IMG * _IMG, dtype=np.float32)
    image_base = (np.arange(m) * _IMG * _IMG)[:, None, None]
    edge = (radius + soft).astype(np.float32)[:, None, None]
    inv_width = (0.5 / soft).astype(np.float32)[:, None, None]
    a, b = a.astype(np.float32), b.astype(np.float32)
    for k in range(n_seg):  # one segment per image at a time: windows never collide
        ax, ay = a[:, k, 0, None, None], a[:, k, 1, None, None]
        dx, dy = b[:, k, 0, None, None] - ax, b[:, k, 1, None, None] - ay
        # Window origin: covers the segment plus reach, clamped inside the image (pixels
        # outside the frame could not be drawn anyway).
        x0 = np.clip(np.floor(ax + dx / 2 - reach), 0, _IMG - win).astype(np.int64)
        y0 = np.clip(np.floor(ay + dy / 2 - reach), 0, _IMG - win).astype(np.int64)
        gx, gy = x0 + offs[None, None, :], y0 + offs[None, :, None]  # (m,1,win), (m,win,1)
        px, py = gx.astype(np.float32) - ax, gy.astype(np.float32) - ay
        # Position along the segment (0 at a, 1 at b) of each pixel's closest point; the
        # small (m, 1, win) / (m, win, 1) factors broadcast into one (m, win, win) array.
        inv_len2 = 1.0 / np.maximum(dx * dx + dy * dy, 1e-12)
        t = px * (dx * inv_len2) + py * (dy * inv_len2)
        np.clip(t, 0.0, 1.0, out=t)
        # Distance to that closest point, computed in place to limit temporaries.
        ex = t * dx
        np.subtract(px, ex, out=ex)
        np.square(ex, out=ex)
        t *= dy
        np.subtract(py, t, out=t)
        np.square(t, out=t)
        ex += t
        dist = np.sqrt(ex, out=ex)
        # Smoothstep from full ink at radius - soft to none at radius + soft: an
        # anti-aliased, slightly soft stroke edge.
        u = np.subtract(edge, dist, out=dist)
        u *= inv_width
        np.clip(u, 0.0, 1.0, out=u)
        val = u * u * (3.0 - 2.0 * u)
        flat = (image_base + gy * _IMG) + gx
        np.put(out, flat, np.maximum(np.take(out, flat), val))
    return out.reshape(m, _IMG, _IMG)


def _blur(img: np.ndarray) -> np.ndarray:
    """Light separable [1, 2, 1] / 4 blur, mixed in at half strength."""
    p = np.pad(img, ((0, 0), (1, 1), (1, 1)))
    h = (p[:, :, :-2] + 2 * p[:, :, 1:-1] + p[:, :, 2:]) / 4
    v = (h[:, :-2] + 2 * h[:, 1:-1] + h[:, 2:]) / 4
    return 0.5 * img + 0.5 * v


def _render_group(
    verts: np.ndarray, pairs: np.ndarray, rng: np.random.Generator, m: int
) -> np.ndarray:
    """Render m random variations of one template as uint8 (m, 28, 28)."""
    pts = _centre(_jitter_vertices(verts, rng, m), pairs, rng)
    radius = rng.uniform(0.75, 1.6, m)
    soft = rng.uniform(0.6, 1.0, m)
    img = _blur(_rasterise(pts[:, pairs[:, 0]], pts[:, pairs[:, 1]], radius, soft))
    # Stretch each image to the full 0..255 range, as MNIST digits are.
    peak = img.reshape(m, -1).max(axis=1)[:, None, None]
    img = img / np.maximum(peak, 1e-6)
    return np.round(img * 255).astype(np.uint8)


def make_digits(n: int, seed: int = 0, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Procedurally drawn handwriting-like digits: uint8 (n, 28, 28) and int64 labels.

    Labels are balanced (each digit n // 10 or n // 10 + 1 times) in shuffled order.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10).astype(np.int64)
    images = np.zeros((n, _IMG, _IMG), dtype=np.uint8)
    templates = _template_segments()
    for digit in range(10):
        where = np.flatnonzero(labels == digit)
        weights = [w for w, _, _ in templates[digit]]
        choice = rng.choice(len(weights), size=len(where), p=weights)
        for v, (_, verts, pairs) in enumerate(templates[digit]):
            idx = where[choice == v]
            for start in range(0, len(idx), chunk):  # chunks bound the temporary memory
                part = idx[start : start + chunk]
                images[part] = _render_group(verts, pairs, rng, len(part))
    return images, labels


# =========================================================================== 2D mixtures


def mixture_modes(name: str) -> tuple[np.ndarray, float]:
    """Mode centres and std of the PacGAN synthetic mixtures ("ring" or "grid")."""
    if name == "ring":
        angles = 2 * np.pi * np.arange(8) / 8
        return np.stack([np.cos(angles), np.sin(angles)], axis=1), 0.01
    if name == "grid":
        ticks = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
        gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
        return np.stack([gx.ravel(), gy.ravel()], axis=1), 0.05
    raise DataError(f"unknown mixture {name!r}: expected 'ring' or 'grid'")


def _mixture_dataset(name: str, n: int, rng: np.random.Generator) -> Dataset:
    modes, std = mixture_modes(name)
    labels = rng.integers(0, len(modes), size=n).astype(np.int64)
    x = (modes[labels] + std * rng.standard_normal((n, 2))).astype(np.float32)
    value_range = (float(x.min()), float(x.max()))
    return Dataset(name, x, labels, "points", value_range, modes.astype(np.float32), std)


# =========================================================================== user files


_USER_WORDING = Wording(
    missing="{path}: file not found (expected a .npy or .npz array file)",
    unreadable="{path}: cannot read file ({detail})",
    truncated="{path}: cannot load: not a .npy or .npz file (unrecognised header)",
    wrong_format="{path}: cannot load: not a .npy or .npz file (unrecognised header)",
    pickled="{path}: contains pickled Python objects; save a plain numeric array instead",
    malformed="{path}: cannot load as .npy/.npz ({detail})",
    corrupt="{path}: cannot load as .npy/.npz ({detail})",
    not_array="{path}: cannot load array {detail} (not a .npy member)",
    count="{path}: .npz must hold exactly one array, found {detail}",
)


def _square_side(d: int) -> int | None:
    """Side of a square image with d pixels (d >= 16), else None."""
    side = math.isqrt(d)
    return side if d >= 16 and side * side == d else None


def _user_dataset(path: Path) -> Dataset:
    x = read_array(path, DataError, _USER_WORDING)
    if x.dtype == object:
        raise DataError(f"{path}: contains Python objects; save a plain numeric array instead")
    if x.ndim not in (2, 3):
        raise DataError(f"{path}: expected shape (N, D) or (N, H, W), got {x.shape}")
    if x.shape[0] == 0 or 0 in x.shape:
        raise DataError(f"{path}: array is empty (shape {x.shape})")
    if x.dtype == np.uint8:
        value_range = (0.0, 255.0)
    elif x.dtype.kind == "f":
        x = x.astype(np.float32)
        if not np.all(np.isfinite(x)):
            raise DataError(f"{path}: contains NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise DataError(
                f"{path}: float values must lie in [0, 1], found range [{lo:g}, {hi:g}]"
            )
        value_range = (0.0, 1.0)
    else:
        raise DataError(
            f"{path}: unsupported dtype {x.dtype}; expected uint8 (0..255) or float in [0, 1]"
        )
    kind = "image"
    if x.ndim == 2:
        side = _square_side(x.shape[1])
        if side is None:
            kind = "points"
        else:
            x = x.reshape(len(x), side, side)
    return Dataset(path.stem, np.ascontiguousarray(x), None, kind, value_range)


# =========================================================================== entry point

_DEFAULT_N = {"train": 60_000, "test": 10_000}
_DEFAULT_N_MIXTURE = {"train": 100_000, "test": 10_000}
# Distinct seed streams per (dataset, split), so e.g. the digits test split never repeats
# training images for the same seed.
_STREAM = {"digits": 1, "ring": 2, "grid": 3}


def _stream_seed(name: str, split: str, seed: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([_STREAM[name], SPLITS.index(split), seed])


def _take(ds: Dataset, n: int | None) -> Dataset:
    """Keep the first n samples (n must not exceed what the dataset has)."""
    if n is None:
        return ds
    if n > len(ds):
        raise DataError(f"{ds.name}: n={n} requested but the dataset has only {len(ds)} samples")
    ds.x = ds.x[:n]
    ds.labels = None if ds.labels is None else ds.labels[:n]
    return ds


def load_dataset(
    name: str | os.PathLike = "digits",
    data_dir: str | os.PathLike | None = None,
    split: str = "train",
    n: int | None = None,
    seed: int = 0,
    download: bool = True,
) -> Dataset:
    """Load a dataset by name ("digits", "mnist", "fashion-mnist", "ring", "grid") or
    from a .npy/.npz path.

    ``n`` limits the number of samples (generated sets produce exactly n; file-backed sets
    keep the first n). ``seed`` drives the generated sets. ``download`` allows fetching
    MNIST / Fashion-MNIST into the user cache when no local copy is found.
    """
    if split not in SPLITS:
        raise DataError(f"split must be 'train' or 'test', got {split!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n <= 0):
        raise DataError(f"n must be a positive integer, got {n!r}")
    name = os.fspath(name)
    key = name.lower()
    if key == "digits":
        count = n or _DEFAULT_N[split]
        images, labels = make_digits(count, seed=_stream_seed(key, split, seed))
        return Dataset("digits", images, labels, "image", (0.0, 255.0))
    if key in ("ring", "grid"):
        count = n or _DEFAULT_N_MIXTURE[split]
        return _mixture_dataset(key, count, np.random.default_rng(_stream_seed(key, split, seed)))
    if key in IDX_SOURCES:
        return _take(_load_idx_dataset(key, data_dir, split, download), n)
    path = Path(name).expanduser()
    if path.suffix.lower() in (".npy", ".npz") or path.exists():
        if path.suffix.lower() not in (".npy", ".npz"):
            raise DataError(f"{path}: unsupported file type; expected a .npy or .npz file")
        return _take(_user_dataset(path), n)
    raise DataError(
        f"unknown dataset {name!r}: expected one of {', '.join(DATASETS)} "
        "or a path to a .npy/.npz file"
    )
