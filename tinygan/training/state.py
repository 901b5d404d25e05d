"""Training state: what a checkpoint holds of a run -- the model's state, and where training is in the data.

The model describes itself (:meth:`tinygan.models.model.Model.state`); :class:`DataPosition` is where
the batches are; :func:`save_training` writes both as one checkpoint file (:mod:`tinygan.io.checkpoint`)
and :func:`load_training` reads them back, checked, with every problem one error naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..backend import Array, Backend, BackendError, get_backend, to_numpy
from ..io.checkpoint import load_checkpoint, save_checkpoint
from ..io.errors import CheckpointError, DivergenceError
from .guard import check_parameters


class DataPosition:
    """Where training is in the data: this epoch's shuffled order, how far into it, which epoch.

    ``perm`` is a device array of sample indices (``None`` before the first batch), ``pos`` the
    number of its entries used, ``epoch`` the number of orders drawn so far.
    """

    def __init__(self, perm: Array | None = None, pos: int = 0, epoch: int = 0) -> None:
        self.perm, self.pos, self.epoch = perm, pos, epoch

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """(arrays, metadata) for a checkpoint: ``data/perm`` and ``{"pos", "epoch"}``."""
        arrays = {} if self.perm is None else {"data/perm": to_numpy(self.perm)}
        return arrays, {"pos": self.pos, "epoch": self.epoch}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: Any, backend: Backend) -> DataPosition:
        """The position saved by :meth:`state`; raises ``ValueError`` naming what is inconsistent."""
        meta = {} if meta is None else meta
        if not isinstance(meta, dict) or not all(_is_count(meta.get(k, 0)) for k in ("pos", "epoch")):
            raise ValueError(f"data position {meta!r} is not a pair of counts")
        pos, epoch = meta.get("pos", 0), meta.get("epoch", 0)
        perm = arrays.get("data/perm")
        if perm is None:
            return cls(None, pos, epoch)
        perm = np.asarray(perm)
        if perm.ndim != 1 or perm.dtype.kind not in "iu":
            raise ValueError(f"data order has shape {perm.shape} and dtype {perm.dtype}, expected a 1-D integer array")
        if not np.array_equal(np.sort(perm), np.arange(perm.shape[0])):
            raise ValueError("data order is not a permutation")
        if pos > perm.shape[0]:
            raise ValueError(f"data position {pos} lies past the end of the data order")
        return cls(backend.asarray(perm.astype(np.int64)), pos, epoch)


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def save_training(path: Any, model: Any, position: DataPosition, extra_meta: dict[str, Any] | None = None) -> None:
    """Write ``model`` and ``position`` to the checkpoint ``path`` atomically (parent folders are created).

    Raises :class:`DivergenceError` (writing nothing) if the model has diverged: a value that is
    not finite, or a parameter beyond :data:`tinygan.training.guard.PARAM_LIMIT`.
    """
    arrays, meta = model.state()  # names the first array that is not finite
    check_parameters(model)
    data_arrays, data_meta = position.state()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, {**arrays, **data_arrays}, {**meta, "data": data_meta, **(extra_meta or {})})


def load_training(
    path: Any, classes: dict[str, type], backend: str | Backend | None = None
) -> tuple[Any, DataPosition]:
    """The model and data position saved at ``path``; ``classes`` maps a checkpoint's model kind to its class.

    Every problem raises :class:`~tinygan.io.errors.CheckpointError` naming the file.
    """
    backend = get_backend(backend)  # a missing CuPy is the backend's error, not the file's

    def allowance(meta: dict[str, Any]) -> int:
        kind = meta.get("model", "gan")
        return classes[kind].state_allowance(meta) if isinstance(kind, str) and kind in classes else 0

    arrays, meta = load_checkpoint(path, allowance)
    kind = meta.get("model", "gan")
    if not isinstance(kind, str) or kind not in classes:
        raise CheckpointError(f"checkpoint {path}: holds a {kind!r} model, expected {' or '.join(classes)}")
    model_arrays = {k: v for k, v in arrays.items() if not k.startswith("data/")}
    try:
        model = classes[kind].from_state(model_arrays, meta, backend)
        position = DataPosition.from_state(arrays, meta.get("data"), backend)
        check_parameters(model)  # saves refuse a diverged state, so a file holding one is no good checkpoint
    except (CheckpointError, BackendError, MemoryError):
        raise
    except DivergenceError as e:
        raise CheckpointError(f"checkpoint {path}: not a good checkpoint, {e}") from None
    except Exception as e:  # the description comes from a file: any failure means it is unusable
        raise CheckpointError(f"checkpoint {path}: {e}") from None
    return model, position
