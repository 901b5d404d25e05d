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
from pathlib import Path
from typing import Any

import numpy as np

from .arrayfile import Wording, read_archive
from .errors import CheckpointError  # still importable from here, as before it moved
from .files import atomic_write_bytes

__all__ = ["CheckpointError", "load_checkpoint", "save_checkpoint"]

FORMAT = "tinygan-checkpoint-1"
_WORDING = Wording(
    missing="checkpoint {path}: no such file",
    unreadable="checkpoint {path}: cannot read it ({detail})",
    truncated="checkpoint {path}: not a tinygan checkpoint (empty or truncated file)",
    wrong_format="checkpoint {path}: not a tinygan checkpoint (not an .npz archive)",
    pickled="checkpoint {path}: holds pickled objects, which are never loaded",
    malformed="checkpoint {path}: not a readable .npz archive ({detail})",
    corrupt="checkpoint {path}: truncated or corrupted ({detail})",
    not_array="checkpoint {path}: not a tinygan checkpoint ({detail} is not an array)",
)


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
    arrays = read_archive(path, CheckpointError, _WORDING)  # never unpickles; refuses a bare .npy
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
