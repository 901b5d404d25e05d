"""Command line: ``python -m tinygan train | sample | eval``.

Orchestration only: ``train`` lives in :mod:`tinygan.train_command`; ``sample`` and ``eval``
load a checkpoint through the Python API and write or print what it generates, a chunk at a
time, so memory does not grow with the number of samples. Every failure the user can cause is
one line on stderr, ``tinygan <command>: error: ...``, and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np

from .api import GAN, load_model
from .arrayfile import write_npy
from .backend import BackendError
from .console import ProgressDisplay
from .errors import CheckpointError, DataError, DivergenceError, UsageError
from .evaluate import EVAL_BYTES_PER_SAMPLE, evaluate_gan, sample_chunks
from .families import cmd_reconstruct
from .files import atomic_file
from .memory import check_fits, describe_bytes
from .options import MODEL_OPTIONS, build_parser
from .runs import draw_samples
from .train_command import EXIT_INTERRUPTED, cmd_train

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "MODEL_OPTIONS", "ProgressDisplay", "build_parser", "main"]

EXIT_ERROR = 2
GRID_LIMIT = 10_000  # images in one .png grid (a 100 x 100 grid): more is no picture, only memory


def cmd_sample(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix not in (".png", ".npy"):
        raise UsageError(f"--out {out}: expected a .png or .npy file name")
    if not out.parent.is_dir():
        problem = "is not a folder" if out.parent.exists() else "does not exist"
        raise UsageError(f"--out {out}: {'' if out.parent.exists() else 'folder '}{out.parent} {problem}")
    if args.reconstruct is not None:
        return cmd_reconstruct(args)
    if args.noise is not None:
        raise UsageError("--noise: corrupts the images given with --reconstruct; add --reconstruct FILE")
    gan = load_model(args.checkpoint, backend=args.backend)
    _check_sample_request(args.n, out, gan)
    chunks = sample_chunks(gan, args.n, args.seed or 0)
    try:
        if out.suffix == ".npy":  # streamed: one chunk in memory, whatever -n
            with atomic_file(out) as f:
                write_npy(f, (args.n, *gan.config.data_shape), np.float32, chunks)
        else:
            draw_samples(out, gan.config, np.concatenate(list(chunks)))
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    print(f"wrote {args.n} samples to {out}", file=sys.stderr)
    return 0


def _check_sample_request(n: int, out: Path, gan: GAN) -> None:
    """Refuse, before generating anything, what the disk or the memory cannot hold."""
    if out.suffix == ".npy":
        size = 128 + n * math.prod(gan.config.data_shape) * 4
        free = shutil.disk_usage(out.parent).free
        if size > free:
            raise UsageError(
                f"-n {n}: {out} would take {describe_bytes(size)}, more than the {describe_bytes(free)} free there"
            )
    elif gan.config.data_kind == "image" and n > GRID_LIMIT:
        raise UsageError(f"-n {n}: a .png grid shows at most {GRID_LIMIT} images; write a .npy file for more")
    else:  # a point plot holds every point
        check_fits(n * math.prod(gan.config.data_shape) * 4 * 4, f"-n {n}", UsageError)


def cmd_eval(args: argparse.Namespace) -> int:
    gan = load_model(args.checkpoint, backend=args.backend)
    if args.n is not None:
        check_fits(args.n * EVAL_BYTES_PER_SAMPLE, f"--n {args.n}", UsageError)
    result = evaluate_gan(gan, n=args.n, data_dir=args.data_dir, seed=args.seed or 0)
    if result is None:
        raise UsageError(
            f"--checkpoint {args.checkpoint}: no metrics for dataset {gan.dataset_name!r} "
            "(metrics exist for digits, mnist, fashion-mnist, ring and grid)"
        )
    print(json.dumps(result, indent=2))
    return 0


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "eval": cmd_eval}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (UsageError, DataError, CheckpointError, BackendError, DivergenceError, OSError, MemoryError) as e:
        # One line, never a traceback: the message names the file or option at fault.
        print(f"tinygan {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"tinygan {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename:
        message = f"{e.filename}: {e.strerror or e}"
    elif isinstance(e, MemoryError):  # a request no check foresaw: numpy's message says how much
        message = f"out of memory ({e or 'no details'})"
    else:
        message = str(e)
    return " ".join(message.split())
