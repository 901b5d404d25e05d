"""A folder of PNG files as a dataset, laid out as image collections usually are on disk.

* ``folder/*.png``: unlabelled images.
* ``folder/<class>/*.png``: one sub-folder per class; the classes are numbered in the sorted
  order of the sub-folders' names, and the names are kept (``tinygan sample --class cat``). The
  samples take the classes in turn (the first file of each class, then the second, ...), so
  that the first n (``--n-train``) hold every class.

Files are read in sorted order by tinygan's own PNG reader (:mod:`tinygan.io.png_decode`: every
colour type, bit depth, filter and interlacing). All images must have the same height and width.
Greyscale and colour files may be mixed: when any file is in colour, every greyscale one becomes
RGB with its grey in all three channels, so the dataset is ``(N, H, W, 3)``; otherwise it is
``(N, H, W)``. Names starting with a dot (``.DS_Store``) are skipped; any other file that is not
a PNG, one that cannot be read, or one of another size is refused in one line naming it, before
anything is trained or written. The memory the decoded images take is checked before they are
decoded, from the files' headers.

The files are read and decoded by a pool of threads: zlib and most of numpy release the GIL.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..io.errors import DataError
from ..io.memory import check_fits
from ..io.png_decode import PNGHeader, decode_png, png_header
from ..models.classes import names_problem

HEADER_BYTES = 33  # signature, then the IHDR chunk: what png_header reads
CHUNK = 256  # files per task of the thread pool
NOT_PNG = "not a .png file (a dataset folder holds PNG images only)"


def _visible(folder: str) -> list[tuple[str, bool]]:
    """``(path, is a folder)`` of the entries of ``folder`` not hidden by a leading dot, sorted by name."""
    try:
        with os.scandir(folder) as entries:
            found = sorted((e.name, e.is_dir()) for e in entries if not e.name.startswith("."))
    except OSError as e:
        raise DataError(f"{folder}: cannot list the folder ({e.strerror or e})") from None
    return [(os.path.join(folder, name), is_dir) for name, is_dir in found]


def _layout(root: str) -> tuple[list[str], np.ndarray | None, list[str] | None]:
    """The image files under ``root`` in order, their labels and the classes' names (both ``None`` without classes)."""
    entries = _visible(root)
    folders = [p for p, is_dir in entries if is_dir]
    if not folders:
        if not entries:
            raise DataError(f"{root}: the folder holds no PNG files")
        return [p for p, _ in entries], None, None
    stray = [p for p, is_dir in entries if not is_dir]
    if stray:
        raise DataError(f"{stray[0]}: a file beside class folders; put every image in its class's folder")
    names = [os.path.basename(p) for p in folders]
    problem = names_problem(names)
    if problem:
        raise DataError(f"{root}: class folders: {problem}")
    per_class = []
    for folder in folders:
        inside = _visible(folder)
        if not inside:
            raise DataError(f"{folder}: the class folder holds no PNG files")
        nested = [p for p, is_dir in inside if is_dir]
        if nested:
            raise DataError(f"{nested[0]}: a folder inside a class folder; a class folder holds PNG files only")
        per_class.append([p for p, _ in inside])
    turns = sorted((i, k) for k, inside in enumerate(per_class) for i in range(len(inside)))
    files = [per_class[k][i] for i, k in turns]  # the classes in turn: each class's i-th file, for i = 0, 1, ...
    return files, np.asarray([k for _, k in turns], np.int64), names


def _read(path: str, size: int = -1) -> bytes:
    """The first ``size`` bytes (all by default) of the PNG file ``path``."""
    if not path.lower().endswith(".png"):
        raise DataError(f"{path}: {NOT_PNG}")
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError as e:
        raise DataError(f"{path}: cannot read file ({e.strerror or e})") from None


def _first_header(path: str) -> PNGHeader:
    try:
        return png_header(_read(path, HEADER_BYTES))
    except DataError:
        raise
    except ValueError as e:
        raise DataError(f"{path}: cannot read as PNG: {e}") from None


def _decode_into(out: np.ndarray, files: list[str], start: int, reference: str) -> list[int]:
    """Decode ``files`` into ``out[start:]``; returns the indices of colour files that a greyscale ``out`` left out.

    A greyscale image in a colour ``out`` is spread over the three channels. ``reference`` names the
    file whose size every image must have.
    """
    colour = []
    for i, path in enumerate(files, start):
        try:
            pixels = decode_png(_read(path))
        except DataError:
            raise
        except ValueError as e:
            raise DataError(f"{path}: cannot read as PNG: {e}") from None
        if pixels.shape[:2] != out.shape[1:3]:
            (h, w), (height, width) = pixels.shape[:2], out.shape[1:3]
            raise DataError(f"{path}: image is {w}x{h} pixels, but {os.path.basename(reference)} is "
                            f"{width}x{height}; all images of a dataset must be the same size")
        if pixels.ndim == 3 and out.ndim == 3:
            colour.append(i)
        else:
            out[i] = pixels[:, :, None] if out.ndim == 4 and pixels.ndim == 2 else pixels
    return colour


def _in_pool(task: Callable, items: list, workers: int) -> list:
    """``task(chunk, start)`` over chunks of ``items`` on ``workers`` threads, results in order.

    The error of the first chunk that fails is raised.
    """
    chunks = [(items[i : i + CHUNK], i) for i in range(0, len(items), CHUNK)]
    if workers <= 1 or len(chunks) == 1:
        return [task(*c) for c in chunks]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda c: task(*c), chunks))


def load_folder(root: str | os.PathLike, workers: int | None = None) -> tuple[np.ndarray, np.ndarray | None,
                                                                             list[str] | None]:
    """The uint8 images ``(N, H, W)`` or ``(N, H, W, 3)`` of the PNG folder ``root``, their labels and class names.

    ``workers``: threads reading files (default: the CPUs, at most 8). Raises a one-line
    :class:`DataError` naming the file or folder at fault.
    """
    files, labels, names = _layout(os.fspath(root))
    workers = workers or min(8, os.cpu_count() or 1)
    first = _first_header(files[0])
    shape = (len(files), first.height, first.width)
    out = _allocate((*shape, 3) if first.channels == 3 else shape, root)
    colour = [i for part in _in_pool(lambda c, s: _decode_into(out, c, s, files[0]), files, workers) for i in part]
    if colour:  # greyscale first, colour later: all of it becomes colour
        grey, out = out, _allocate((*shape, 3), root)
        out[...] = grey[..., None]
        del grey
        tinted = _allocate((len(colour), *shape[1:], 3), root)
        _in_pool(lambda c, s: _decode_into(tinted, c, s, files[0]), [files[i] for i in colour], workers)
        out[colour] = tinted
    return out, labels, names


def _allocate(shape: tuple[int, ...], root: str | os.PathLike) -> np.ndarray:
    """An empty uint8 array of ``shape``, once its size is known to fit in memory."""
    check_fits(float(np.prod(shape, dtype=np.float64)), f"{root}: {shape[0]} images", DataError)
    return np.empty(shape, np.uint8)
