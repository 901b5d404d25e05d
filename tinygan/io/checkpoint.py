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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .arrayfile import Archive, Wording, open_archive
from .errors import CheckpointError
from .files import atomic_write_bytes

__all__ = ["CheckpointError", "load_checkpoint", "read_meta", "save_checkpoint"]

FORMAT = "tinygan-checkpoint-1"
META_LIMIT = 16 * 2**20  # bytes of JSON metadata read at most: a model description is a few kB
_WORDING = Wording(
    missing="checkpoint {path}: no such file",
    unreadable="checkpoint {path}: cannot read it ({detail})",
    truncated="checkpoint {path}: not a tinygan checkpoint (empty or truncated file)",
    wrong_format="checkpoint {path}: not a tinygan checkpoint (not an .npz archive)",
    pickled="checkpoint {path}: holds pickled objects, which are never loaded",
    malformed="checkpoint {path}: not a readable .npz archive ({detail})",
    corrupt="checkpoint {path}: truncated or corrupted ({detail})",
    not_array="checkpoint {path}: not a tinygan checkpoint ({detail} is not an array)",
    folder="checkpoint {path}: is a folder, not a checkpoint file",
    not_file="checkpoint {path}: is not a regular file",
    too_big="checkpoint {path}: {detail}",
)


def save_checkpoint(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Atomically write ``arrays`` (host NumPy arrays) and JSON-able ``meta`` to ``path``."""
    buffer = io.BytesIO()
    payload = {"__meta__": np.array(json.dumps({"format": FORMAT, **meta}))}
    payload.update({k: np.asarray(v) for k, v in arrays.items()})
    np.savez(buffer, **payload)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(
    path: str | os.PathLike, allowance: Callable[[dict[str, Any]], int] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint; returns ``(arrays, meta)``. Raises :class:`CheckpointError` with the file named.

    Nothing is inflated before it is measured. The metadata is read first; then the arrays
    may together inflate past their stored size by at most ``allowance(meta)`` bytes (what
    the model the metadata describes needs; nothing without it, as tinygan stores arrays
    uncompressed), and must fit in the memory available.
    """
    path = _resolve(path)
    with open_archive(path, CheckpointError, _WORDING) as archive:
        meta = _meta(archive, path)
        inflated = sum(m.inflation for k, m in archive.members.items() if k != "__meta__")
        allowed = allowance(meta) if allowance is not None else 0
        if inflated > allowed:
            raise CheckpointError(
                f"checkpoint {path}: its compressed arrays inflate by {inflated} bytes, more than the "
                f"{allowed} bytes the model it describes needs"
            )
        return archive.read_all(skip=("__meta__",)), meta


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's metadata alone (the step, the model's description, ...), reading no array."""
    path = _resolve(path)
    with open_archive(path, CheckpointError, _WORDING) as archive:
        return _meta(archive, path)


def _resolve(path: str | os.PathLike) -> Path:
    """A run folder stands for its checkpoint.npz."""
    path = Path(path)
    if not path.is_dir():
        return path
    if not os.path.lexists(path / "checkpoint.npz"):
        raise CheckpointError(f"checkpoint {path}: a folder with no checkpoint.npz in it (not a tinygan run folder?)")
    return path / "checkpoint.npz"


def _meta(archive: Archive, path: Path) -> dict[str, Any]:
    info = archive.members.get("__meta__")
    if info is None or info.dtype.kind != "U" or info.shape != ():
        raise CheckpointError(f"checkpoint {path}: not a tinygan checkpoint (no metadata)")
    if info.size > META_LIMIT:
        raise CheckpointError(f"checkpoint {path}: metadata of {info.size} bytes is too large (at most {META_LIMIT})")
    try:
        meta = json.loads(str(archive.read("__meta__")))
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"checkpoint {path}: metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: unknown format (expected {FORMAT})")
    return meta
