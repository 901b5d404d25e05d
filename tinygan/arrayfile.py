"""Reading .npy / .npz files without ever unpickling, every failure one line naming the file.

``np.load`` takes any bytes it does not recognise for a pickle, so a file's first bytes are
checked against the accepted formats before it is called, and it is always called with
``allow_pickle=False``. Whatever numpy raises on a damaged file becomes the caller's error
type, in the caller's words (a checkpoint and a user's dataset describe the same failure
differently). This module imports nothing from tinygan.
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"  # a zip with at least one member; an empty one starts b"PK\x05\x06"


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


def read_archive(path: Path, error: type[Exception], wording: Wording) -> dict[str, np.ndarray]:
    """Every array of an .npz archive, by name. Raises ``error`` worded by ``wording``."""
    return _read(path, (ZIP_MAGIC,), error, wording, single=False)


def read_array(path: Path, error: type[Exception], wording: Wording) -> np.ndarray:
    """The array of a .npy file, or of an .npz archive that holds exactly one.

    The number of arrays is checked before any is read, so an archive of several large
    arrays is refused at once. Raises ``error`` worded by ``wording``.
    """
    # b"PK" admits every zip, the empty one included, so that one is reported by its count.
    return _read(path, (NPY_MAGIC, b"PK"), error, wording, single=True)


def _read(
    path: Path, magics: tuple[bytes, ...], error: type[Exception], wording: Wording, single: bool
) -> np.ndarray | dict[str, np.ndarray]:
    def fail(message: str, detail: object = "") -> Exception:
        text = message.format(path=path, detail=detail)
        return error(text.replace("\r", "\\r").replace("\n", "\\n"))  # one line, whatever numpy quoted

    _check_header(path, magics, fail, wording)
    with _numpy_errors(fail, wording):
        loaded = np.load(path, allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        return loaded  # a .npy file: only read_array accepts its header
    with loaded:
        names = list(loaded.files)
        if single and len(names) != 1:
            raise fail(wording.count, f"{len(names)} ({', '.join(names) or 'none'})")
        with _numpy_errors(fail, wording):
            arrays = {k: loaded[k] for k in names}
    odd = [k for k, v in arrays.items() if not isinstance(v, np.ndarray)]
    if odd:  # np.load hands back archive members that hold no .npy data as raw bytes
        raise fail(wording.not_array, repr(odd[0]))
    return arrays[names[0]] if single else arrays


def _check_header(path: Path, magics: tuple[bytes, ...], fail: Callable[..., Exception], wording: Wording) -> None:
    if not path.is_file():
        raise fail(wording.missing)
    size = max(map(len, magics))
    try:
        with open(path, "rb") as f:
            head = f.read(size)
    except OSError as e:
        raise fail(wording.unreadable, e.strerror or e) from None
    if not head.startswith(magics):
        raise fail(wording.truncated if len(head) < size else wording.wrong_format)


@contextlib.contextmanager
def _numpy_errors(fail: Callable[..., Exception], wording: Wording) -> Iterator[None]:
    """Turn what numpy, zipfile and zlib raise on a bad file into the caller's error."""
    try:
        yield
    except ValueError as e:  # numpy's refusal to unpickle is a ValueError too
        if "pickle" in str(e).lower():
            raise fail(wording.pickled) from None
        raise fail(wording.malformed, e) from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise fail(wording.corrupt, e) from None
    except Exception as e:  # zlib/zip internals raise assorted types on mangled bytes
        raise fail(wording.corrupt, f"{type(e).__name__}: {e}") from None
