"""What a file of generated or reconstructed samples takes, checked before any sample is made, and the
reconstructions of many images written a chunk at a time.

A ``.npy`` file of ``n`` samples is streamed, so it needs disk, not memory; a ``.png`` grid holds at
most :data:`GRID_LIMIT` images (more is no picture, only memory); a point plot holds every point in
memory. ``tinygan sample`` draws, interpolates and reconstructs within these limits alike.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..io.arrayfile import write_npy
from ..io.errors import UsageError
from ..io.files import atomic_file
from ..io.memory import check_fits, describe_bytes
from ..models.latents import SAMPLE_CHUNK
from .pictures import GRID_LIMIT, corrupt

__all__ = ["GRID_LIMIT", "check_output", "write_reconstructions_npy"]


def check_output(n: int, out: Path, config: Any, asked: str) -> None:
    """Refuse, before making anything, ``n`` samples (``asked`` by those options) for the file ``out`` that
    the disk or the memory cannot hold, or too many for one picture: a one-line :class:`UsageError`."""
    if out.suffix == ".npy":
        size = 128 + n * math.prod(config.data_shape) * 4
        free = shutil.disk_usage(out.parent).free
        if size > free:
            raise UsageError(
                f"{asked}: {out} would take {describe_bytes(size)}, more than the {describe_bytes(free)} free there"
            )
    elif config.data_kind == "image" and n > GRID_LIMIT:
        raise UsageError(f"{asked}: a .png grid shows at most {GRID_LIMIT} images; write a .npy file for more")
    else:  # a point plot holds every point
        check_fits(n * math.prod(config.data_shape) * 4 * 4, asked, UsageError)


def write_reconstructions_npy(out: Path, model: Any, x: np.ndarray, noise: float = 0.0, seed: int = 0,
                              chunk: int = SAMPLE_CHUNK) -> None:
    """The reconstructions of ``x`` (corrupted first with ``noise``) as a ``.npy`` file, ``chunk`` images at a
    time: memory holds one chunk of floats, whatever the count.

    The first chunk is corrupted as :func:`~tinygan.evaluation.pictures.corrupt` corrupts it with ``seed``
    (the images a ``.png`` of the same request shows), each later one from its own stream of ``seed``.
    """

    def chunks():
        for start in range(0, len(x), chunk):
            part = x[start : start + chunk]
            if noise:
                part = corrupt(part, noise, seed if start == 0 else np.random.SeedSequence([seed, start]))
            yield model.reconstruct(part)

    with atomic_file(out) as f:
        write_npy(f, (len(x), *model.config.data_shape), np.float32, chunks())
