"""``tinygan sample``: samples from a checkpoint, of chosen classes, or walks between latents.

Generates a chunk at a time, so memory does not grow with ``-n``: ``.npy`` is streamed to disk,
``.png`` draws at most :data:`GRID_LIMIT` images. A conditional model's samples are of the classes
``--class`` names (all of its classes by default), spread evenly, class by class; ``--interpolate K``
draws ``-n`` rows of K images walking between two latents (:mod:`tinygan.evaluation.pictures`), for any model.
``--reconstruct SOURCE`` shows what a VAE makes of given images.
"""

from __future__ import annotations

import argparse
import io
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..data import DATASETS, load_dataset
from ..data.validate import check_samples
from ..evaluation.pictures import corrupt, draw_samples, interpolation, write_reconstructions, write_rows
from ..io.arrayfile import write_npy
from ..io.errors import UsageError
from ..io.files import atomic_file, atomic_write_bytes
from ..io.memory import check_fits, describe_bytes
from ..models.classes import class_indices, spread
from ..models.conditioning import class_names
from ..models.latents import sample_chunks
from .api import load_model

GRID_LIMIT = 10_000  # images in one .png grid (a 100 x 100 grid): more is no picture, only memory
DEFAULT_N, DEFAULT_ROWS = 64, 8  # samples, or rows of an interpolation


def cmd_sample(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix not in (".png", ".npy"):
        raise UsageError(f"--out {out}: expected a .png or .npy file name")
    if not out.parent.is_dir():
        problem = "is not a folder" if out.parent.exists() else "does not exist"
        raise UsageError(f"--out {out}: {'' if out.parent.exists() else 'folder '}{out.parent} {problem}")
    if args.n is None:
        args.n = DEFAULT_ROWS if args.interpolate else DEFAULT_N
    _check_combination(args)
    if args.reconstruct is not None:
        return cmd_reconstruct(args)
    model = load_model(args.checkpoint, backend=args.backend)
    classes = _classes(args, model)
    try:
        if args.interpolate:
            what = _write_interpolation(args, out, model, classes)
        else:
            what = _write_samples(args, out, model, classes)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    print(f"wrote {what} to {out}", file=sys.stderr)
    return 0


def _check_combination(args: argparse.Namespace) -> None:
    if args.noise is not None and args.reconstruct is None:
        raise UsageError("--noise: corrupts the images given with --reconstruct; add --reconstruct FILE")
    if args.reconstruct is not None:
        for option, value in (("--class", args.classes), ("--interpolate", args.interpolate)):
            if value is not None:
                raise UsageError(f"{option}: draws new samples; it does not go with --reconstruct")


def _classes(args: argparse.Namespace, model: Any) -> list[int] | None:
    """The classes ``--class`` asks for (``None``: every class of a conditional model, or an unconditional one)."""
    if args.classes is None:
        return None
    if not model.config.conditional:
        raise UsageError(f"--class: {args.checkpoint} holds an unconditional model (trained without "
                         "--conditional), which cannot generate a chosen class")
    try:
        return class_indices(args.classes, class_names(model.config))
    except ValueError as e:
        raise UsageError(f"--class {args.classes}: {e}") from None


def _write_samples(args: argparse.Namespace, out: Path, model: Any, classes: list[int] | None) -> str:
    n = args.n
    _check_request(n, out, model.config, f"-n {n}")
    labels = None
    if model.config.conditional:
        classes = list(range(model.config.n_classes)) if classes is None else classes
        labels = spread(n, classes)
    chunks = sample_chunks(model, n, args.seed or 0, labels=labels)
    if out.suffix == ".npy":  # streamed: one chunk in memory, whatever -n
        with atomic_file(out) as f:
            write_npy(f, (n, *model.config.data_shape), np.float32, chunks)
    elif labels is not None and model.config.data_kind == "image":  # a row per class when they share out evenly
        per_class = n // len(classes) if n % len(classes) == 0 and len(classes) > 1 else None
        write_rows(out, model.config, np.concatenate(list(chunks)), per_class or math.ceil(math.sqrt(n)))
    else:
        draw_samples(out, model.config, np.concatenate(list(chunks)))
    return f"{n} samples"


def _write_interpolation(args: argparse.Namespace, out: Path, model: Any, classes: list[int] | None) -> str:
    rows, steps = args.n, args.interpolate
    if rows * steps > GRID_LIMIT:  # generated at once: a picture's worth
        raise UsageError(f"-n {rows} --interpolate {steps}: {rows * steps} images, more than the {GRID_LIMIT} "
                         "an interpolation draws at once")
    _check_request(rows * steps, out, model.config, f"-n {rows} --interpolate {steps}")
    samples = interpolation(model, rows, steps, args.seed or 0, classes)
    if out.suffix == ".npy":
        with atomic_file(out) as f:
            write_npy(f, (rows, steps, *model.config.data_shape), np.float32,
                      iter([samples.reshape(rows, steps, *model.config.data_shape)]))
    else:
        write_rows(out, model.config, samples, steps)
    return f"{rows} interpolations of {steps} steps"


def _check_request(n: int, out: Path, config: Any, asked: str) -> None:
    """Refuse, before generating anything, ``n`` samples (``asked`` by those options) that the disk or
    the memory cannot hold."""
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


# -- sample --reconstruct ----------------------------------------------------------------------


def cmd_reconstruct(args: argparse.Namespace) -> int:
    """``sample --reconstruct SOURCE``: reconstruct the first ``-n`` images of SOURCE, corrupted first with
    ``--noise``; ``.npy`` writes the reconstructions, ``.png`` originals (, corrupted) and reconstructions."""
    out = Path(args.out)
    model = load_model(args.checkpoint, backend=args.backend)
    if not model.RECONSTRUCTS:
        raise UsageError(f"--reconstruct: {args.checkpoint} holds a {model.kind.upper()}, which has no encoder")
    if args.noise and model.config.data_kind != "image":
        raise UsageError("--noise: corrupts images; this model was trained on points")
    named = args.reconstruct.lower() in DATASETS  # the first -n of its test split; a file is read whole
    source = load_dataset(args.reconstruct, data_dir=args.data_dir, split="test", n=args.n if named else None)
    x = check_samples(source.x[: args.n], name=f"--reconstruct {args.reconstruct}",
                      data_shape=model.config.data_shape, kind=model.config.data_kind)
    x = x.reshape(len(x), *model.config.data_shape)
    try:
        if out.suffix == ".npy":
            buffer = io.BytesIO()
            np.save(buffer, model.reconstruct(_corrupted(x, args)))
            atomic_write_bytes(out, buffer.getvalue())
        else:
            write_reconstructions(out, model, x, args.noise or 0.0, args.seed or 0)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    noisy = f" corrupted with noise {args.noise:g}" if args.noise else ""
    print(f"wrote reconstructions of {len(x)} images{noisy} to {out}", file=sys.stderr)
    return 0


def _corrupted(x: np.ndarray, args: argparse.Namespace) -> np.ndarray:
    return corrupt(x, args.noise, args.seed or 0) if args.noise else x
