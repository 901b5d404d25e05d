"""Checkpoint files: ``.npz`` archives of named arrays plus JSON metadata, written atomically.

A checkpoint never holds pickled objects and is always read with
``allow_pickle=False``. Writes go to a temporary file in the same folder,
which is flushed, fsynced and then renamed over the old file, so a crash or a
kill leaves either the previous checkpoint or the new one -- never half of one.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "tinygan-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not fit: the message names the file."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a finished file gets the usual mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


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


def save_checkpoint(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Atomically write ``arrays`` (host NumPy arrays) and JSON-able ``meta`` to ``path``."""
    buffer = io.BytesIO()
    payload = {"__meta__": np.array(json.dumps({"format": FORMAT, **meta}))}
    payload.update({k: np.asarray(v) for k, v in arrays.items()})
    np.savez(buffer, **payload)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint; returns ``(arrays, meta)``. Raises :class:`CheckpointError` with the file named."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise CheckpointError(f"checkpoint {path}: holds pickled objects, which are never loaded") from None
        raise CheckpointError(f"checkpoint {path}: not a readable .npz archive ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise CheckpointError(f"checkpoint {path}: truncated or corrupted ({e})") from None
    except Exception as e:  # zlib/zip internals raise assorted types on mangled bytes
        raise CheckpointError(f"checkpoint {path}: truncated or corrupted ({type(e).__name__}: {e})") from None
    meta_array = arrays.pop("__meta__", None)
    if meta_array is None or meta_array.dtype.kind != "U" or meta_array.ndim != 0:
        raise CheckpointError(f"checkpoint {path}: not a tinygan checkpoint (no metadata)")
    try:
        meta = json.loads(str(meta_array))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint {path}: metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: unknown format (expected {FORMAT})")
    return arrays, meta
