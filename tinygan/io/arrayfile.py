"""Reading .npy / .npz files without ever unpickling, every failure one line naming the file.

``np.load`` takes any bytes it does not recognise for a pickle, so a file's first bytes are
checked against the accepted formats first, and arrays are read with ``allow_pickle=False``.
Nothing is inflated before it is measured: an archive's directory gives each member's name
and declared size, each member's array header its shape and dtype, and the two must agree
(so reading allocates exactly what the directory declares). The caller sees the checked
:class:`Archive` and decides what reading it may cost before any array is read. Whatever
numpy, zip or zlib raise on a damaged file becomes the caller's error type, in the caller's
words. This module imports only :mod:`tinygan.io.memory`.
"""

from __future__ import annotations

import contextlib
import math
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .memory import shortfall

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"  # a zip with at least one member; an empty one starts b"PK\x05\x06"
NAME_LIMIT = 1024  # longest member name accepted: tinygan's are a few dozen characters


@dataclass(frozen=True)
class Wording:
    """The message for each failure: format strings given ``path`` and, where noted, ``detail``."""

    missing: str  # no such file
    unreadable: str  # the OS refused to read it; detail: the OS error
    truncated: str  # shorter than the accepted headers
    wrong_format: str  # starts with none of the accepted headers
    pickled: str  # would need unpickling
    malformed: str  # numpy rejected its structure; detail: numpy's message
    corrupt: str  # damaged on the way (zip, zlib, end of file); detail: the error
    not_array: str  # an archive member that is no .npy array; detail: the member's name, quoted
    count: str = ""  # read_array only: not exactly one array; detail: "<count> (<names>)"
    folder: str = "{path}: is a folder, not an array file"
    not_file: str = "{path}: is not a regular file"
    too_big: str = "{path}: {detail}"  # detail: what it would cost and what is available


class Failure:
    """Builds the caller's error type, worded by the caller, as one line naming the file."""

    def __init__(self, path: Path, error: type[Exception], wording: Wording) -> None:
        self.path, self.error, self.wording = path, error, wording

    def __call__(self, message: str, detail: object = "") -> Exception:
        text = message.format(path=self.path, detail=detail)
        return self.error(text.replace("\r", "\\r").replace("\n", "\\n"))  # one line, whatever numpy quoted


@dataclass(frozen=True)
class Member:
    """One array of an archive as its directory and header describe it, before it is read."""

    name: str  # without ".npy"
    shape: tuple[int, ...]
    dtype: np.dtype
    size: int  # bytes it inflates to (array header included), as the directory declares
    stored: int  # bytes it takes in the file

    @property
    def inflation(self) -> int:
        """Bytes beyond its stored size that reading it allocates (0 for an uncompressed member)."""
        return max(self.size - self.stored, 0)


class Archive:
    """An .npz archive whose directory and array headers are checked; arrays are read on demand.

    ``members`` maps each array's name to its :class:`Member`; ``fail`` builds the caller's
    error, for refusals the caller decides on.
    """

    def __init__(self, zf: zipfile.ZipFile, members: dict[str, Member], fail: Failure) -> None:
        self._zip, self.members, self.fail = zf, members, fail

    def read(self, name: str) -> np.ndarray:
        """The array ``name``, inflating only that member."""
        with self._zip.open(name + ".npy") as f:
            return np.lib.format.read_array(f, allow_pickle=False)

    def read_all(self, skip: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """Every array but those in ``skip``, by name, once their declared sizes are known to fit in memory."""
        names = [k for k in self.members if k not in skip]
        problem = shortfall(sum(self.members[k].size for k in names), "memory to load")
        if problem:
            raise self.fail(self.fail.wording.too_big, problem)
        return {name: self.read(name) for name in names}


@contextlib.contextmanager
def open_archive(path: Path, error: type[Exception], wording: Wording) -> Iterator[Archive]:
    """The checked :class:`Archive` at ``path``; raises ``error`` worded by ``wording``.

    Damage found while reading its arrays inside the block becomes ``error`` too.
    """
    fail = Failure(path, error, wording)
    _check_header(path, (ZIP_MAGIC,), fail)
    with _open(path, fail) as archive:
        yield archive


def read_array(path: Path, error: type[Exception], wording: Wording) -> np.ndarray:
    """The array of a .npy file, or of an .npz archive that holds exactly one.

    The number of arrays and their declared size are checked before any is read, so an
    archive of several arrays, or an array that would not fit in memory, is refused at once.
    Raises ``error`` worded by ``wording``.
    """
    fail = Failure(path, error, wording)
    # b"PK" admits every zip, the empty one included, so that one is reported by its count.
    if not _check_header(path, (NPY_MAGIC, b"PK"), fail).startswith(NPY_MAGIC):
        with _open(path, fail) as archive:
            names = list(archive.members)
            if len(names) != 1:
                raise fail(wording.count, f"{len(names)} ({', '.join(names) or 'none'})")
            return archive.read_all()[names[0]]
    with _numpy_errors(fail), open(path, "rb") as f:
        shape, dtype, offset = _npy_header(f, fail)
        data, held = math.prod(shape) * dtype.itemsize, os.fstat(f.fileno()).st_size - offset
        if held < data:
            raise fail(wording.corrupt, f"truncated: its header declares {data} bytes of data, the file holds {held}")
        problem = shortfall(data, "memory to load")
        if problem:
            raise fail(wording.too_big, problem)
        f.seek(0)
        return np.lib.format.read_array(f, allow_pickle=False)


@contextlib.contextmanager
def _open(path: Path, fail: Failure) -> Iterator[Archive]:
    with _numpy_errors(fail), zipfile.ZipFile(path) as zf:
        yield Archive(zf, _members(zf, fail), fail)


def _members(zf: zipfile.ZipFile, fail: Failure) -> dict[str, Member]:
    """Each member's name, declared size and array header, checked against each other."""
    members: dict[str, Member] = {}
    for info in zf.infolist():
        name = info.filename
        if not name.endswith(".npy") or len(name) > NAME_LIMIT or "\0" in name:
            raise fail(fail.wording.not_array, repr(name[:80]))
        if name[:-4] in members:
            raise fail(fail.wording.corrupt, f"member {name[:80]!r} appears twice")
        with zf.open(info) as f:  # inflates the array header only
            shape, dtype, offset = _npy_header(f, fail)
        size = offset + math.prod(shape) * dtype.itemsize
        if size != info.file_size:
            raise fail(
                fail.wording.corrupt, f"member {name[:80]!r} declares {info.file_size} bytes, its array header {size}"
            )
        members[name[:-4]] = Member(name[:-4], shape, dtype, info.file_size, info.compress_size)
    return members


def _npy_header(f: BinaryIO, fail: Failure) -> tuple[tuple[int, ...], Any, int]:
    """(shape, dtype, data offset) from a .npy header; an object dtype is refused as a pickle."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, _, dtype = read(f)
    if dtype.hasobject:
        raise fail(fail.wording.pickled)
    return tuple(shape), dtype, f.tell()


def _check_header(path: Path, magics: tuple[bytes, ...], fail: Failure) -> bytes:
    wording = fail.wording
    if not path.is_file():
        problem = wording.folder if path.is_dir() else wording.not_file if path.exists() else wording.missing
        raise fail(problem)
    size = max(map(len, magics))
    try:
        with open(path, "rb") as f:
            head = f.read(size)
    except OSError as e:
        raise fail(wording.unreadable, e.strerror or e) from None
    if not head.startswith(magics):
        raise fail(wording.truncated if len(head) < size else wording.wrong_format)
    return head


@contextlib.contextmanager
def _numpy_errors(fail: Failure) -> Iterator[None]:
    """Turn what numpy, zipfile and zlib raise on a bad file into the caller's error."""
    wording = fail.wording
    try:
        yield
    except (fail.error, MemoryError):
        raise
    except ValueError as e:  # numpy's refusal to unpickle is a ValueError too
        if "pickle" in str(e).lower():
            raise fail(wording.pickled) from None
        raise fail(wording.malformed, e) from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise fail(wording.corrupt, e) from None
    except Exception as e:  # zlib/zip internals raise assorted types on mangled bytes
        raise fail(wording.corrupt, f"{type(e).__name__}: {e}") from None


def write_npy(f: BinaryIO, shape: tuple[int, ...], dtype: Any, chunks: Iterator[np.ndarray]) -> None:
    """Write a .npy file of ``shape`` and ``dtype`` to ``f`` from ``chunks`` along the first axis.

    Memory stays that of one chunk, whatever the length. Raises ``ValueError`` if the chunks
    do not add up to ``shape``.
    """
    dtype = np.dtype(dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    np.lib.format.write_array_header_1_0(f, header)
    rows = 0
    for chunk in chunks:
        chunk = np.ascontiguousarray(chunk, dtype=dtype)
        if chunk.shape[1:] != tuple(shape[1:]):
            raise ValueError(f"chunk of shape {chunk.shape} does not fit an array of shape {shape}")
        f.write(memoryview(chunk).cast("B"))
        rows += chunk.shape[0]
    if rows != shape[0]:
        raise ValueError(f"chunks hold {rows} rows, the header declares {shape[0]}")
