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
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CheckpointError  # still importable from here, as before it moved
from .files import atomic_write_bytes

FORMAT = "tinygan-checkpoint-1"
_ZIP_MAGIC = b"PK\x03\x04"


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
        with open(path, "rb") as f:
            head = f.read(len(_ZIP_MAGIC))
    except OSError as e:
        raise CheckpointError(f"checkpoint {path}: cannot read it ({e.strerror or e})") from None
    # An .npz is a zip archive. Anything else is refused here: np.load would take unknown
    # bytes for a pickle (and only then refuse it), or return a bare .npy array.
    if head != _ZIP_MAGIC:
        what = "not an .npz archive" if len(head) == len(_ZIP_MAGIC) else "empty or truncated file"
        raise CheckpointError(f"checkpoint {path}: not a tinygan checkpoint ({what})")
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
    odd = [k for k, v in arrays.items() if not isinstance(v, np.ndarray)]
    if odd:  # np.load hands back non-.npy archive members as raw bytes
        raise CheckpointError(f"checkpoint {path}: not a tinygan checkpoint ({odd[0]!r} is not an array)")
    meta_array = arrays.pop("__meta__", None)
    if meta_array is None or meta_array.dtype.kind != "U" or meta_array.ndim != 0:
        raise CheckpointError(f"checkpoint {path}: not a tinygan checkpoint (no metadata)")
    try:
        meta = json.loads(str(meta_array))
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"checkpoint {path}: metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: unknown format (expected {FORMAT})")
    return arrays, meta
