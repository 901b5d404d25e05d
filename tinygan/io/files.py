"""Writing files safely: atomic replacement, and appends that never go through a link.

Atomic writes go to a temporary file in the destination's folder, which is flushed,
fsynced and renamed over the destination; a crash, a kill or an error on the way leaves
the old file untouched and no temporary file behind. The temporary file is created with
``O_EXCL`` and the rename replaces a link planted at the destination instead of writing
through it, so no write ever lands outside the folder. A file that must grow in place
(``metrics.jsonl``) is opened with ``O_NOFOLLOW`` and refused unless it is a regular file
with no other name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

# O_NOFOLLOW refuses a symbolic link as the last part of a path (absent where the OS has none).
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary file for binary writing that replaces ``path`` when the block succeeds.

    An ``OSError`` on the way (a full disk, say) names ``path`` in its ``filename``.
    """
    path = Path(path)
    with _naming(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with _naming(path):
            # mkstemp makes 0600; a finished file gets the usual mode (set on the descriptor: no path to follow)
            os.fchmod(fd, 0o666 & ~_umask()) if hasattr(os, "fchmod") else os.chmod(tmp, 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    _fsync_dir(path.parent)


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Make an ``OSError`` that names no file, or a temporary one, name ``path``."""
    try:
        yield
    except OSError as e:
        if e.filename is None or Path(e.filename).name.startswith(f".{path.name}."):
            raise OSError(e.errno, e.strerror or str(e), str(path)) from None
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_file(path) as f:
        f.write(data)


def open_for_append(path: str | os.PathLike) -> BinaryIO:
    """``path`` opened for appending (created if missing), never through a link.

    Raises ``OSError`` naming ``path`` when it is a symbolic link, not a regular file, or a
    file with other names (a hard link), any of which would let the write land elsewhere.
    """
    fd = open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    if os.fstat(fd).st_nlink != 1:
        os.close(fd)
        raise OSError(errno.EPERM, "has other names (hard links); tinygan never writes through links", str(path))
    return os.fdopen(fd, "ab")


def read_regular(path: str | os.PathLike) -> bytes:
    """The bytes of ``path``, a regular file reached without following a link.

    Raises ``FileNotFoundError`` when it is missing and ``OSError`` naming it otherwise.
    """
    with os.fdopen(open_regular(path, os.O_RDONLY), "rb") as f:
        return f.read()


def open_regular(path: str | os.PathLike, flags: int) -> int:
    """A descriptor of the regular file ``path``, opened with ``O_NOFOLLOW``; ``OSError`` names the path."""
    try:
        kind = stat.S_IFMT(os.lstat(path).st_mode)
    except FileNotFoundError:
        kind = stat.S_IFREG  # created by the open below, unless O_CREAT is missing
    if kind == stat.S_IFLNK:
        raise OSError(errno.ELOOP, "is a symbolic link; tinygan never follows links there", str(path))
    if kind != stat.S_IFREG:
        raise OSError(errno.EPERM, "is not a regular file", str(path))
    # O_NOFOLLOW and O_NONBLOCK: a link or a FIFO put there since the check fails here or below.
    fd = os.open(path, flags | O_NOFOLLOW | O_CLOEXEC | getattr(os, "O_NONBLOCK", 0), 0o666)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EPERM, "is not a regular file", str(path))
    os.set_blocking(fd, True)
    return fd


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    # The rename itself is durable only once the folder's entry is on disk.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
