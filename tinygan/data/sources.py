"""Where MNIST-style IDX files come from: local folders first, then a verified download.

The search order is ``--data-dir``, ``$TINYGAN_DATA``, the user cache and system-wide
dataset folders; a missing split is downloaded into the cache, checked against the MD5 sums
published for the official files and moved into place only once it is whole.

``SYSTEM_DATA_ROOTS`` and ``_urlopen`` are looked up here at call time, so tests patch them
in this module (patching the names re-exported by ``tinygan.data`` has no effect).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.request
from pathlib import Path

from ..io.errors import DataError
from ..io.files import atomic_file

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


def find_idx_files(
    name: str, split: str, data_dir: str | os.PathLike | None, download: bool
) -> tuple[Path, Path]:
    """Paths of the split's image and label files, downloading them when allowed and missing."""
    dirs = _search_dirs(name, data_dir)
    found = _locate_idx(name, split, dirs)
    if found is not None:
        return found
    if not download:
        raise DataError(_not_found_message(name, split, dirs, "downloading is disabled"))
    mirror = IDX_SOURCES[name][0]
    try:
        return _download_idx(name, split)
    except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
        reason = f"download from {mirror} failed ({exc or type(exc).__name__})"
        raise DataError(_not_found_message(name, split, dirs, reason)) from None
