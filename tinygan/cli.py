"""Command line: ``python -m tinygan train | sample | eval``.

Orchestration only: ``train`` lives in :mod:`tinygan.train_command`; ``sample`` and ``eval``
load a checkpoint through the Python API and write or print what it generates. Every failure
the user can cause is one line on stderr, ``tinygan <command>: error: ...``, and exit status 2.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

from .api import GAN
from .backend import BackendError
from .console import ProgressDisplay
from .errors import CheckpointError, DataError, DivergenceError, UsageError
from .evaluate import evaluate_gan
from .files import atomic_write_bytes
from .gan import seeded_latents
from .options import MODEL_OPTIONS, build_parser
from .runs import write_samples
from .train_command import EXIT_INTERRUPTED, cmd_train

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "MODEL_OPTIONS", "ProgressDisplay", "build_parser", "main"]

EXIT_ERROR = 2


# -- sample and eval --------------------------------------------------------------------------


def cmd_sample(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix not in (".png", ".npy"):
        raise UsageError(f"--out {out}: expected a .png or .npy file name")
    if not out.parent.is_dir():
        problem = "is not a folder" if out.parent.exists() else "does not exist"
        raise UsageError(f"--out {out}: {'' if out.parent.exists() else 'folder '}{out.parent} {problem}")
    gan = GAN.load(args.checkpoint, backend=args.backend)
    z = seeded_latents(args.n, gan.config.latent_dim, args.seed or 0)
    try:
        if out.suffix == ".npy":
            buffer = io.BytesIO()
            np.save(buffer, gan.sample(args.n, z=z))
            atomic_write_bytes(out, buffer.getvalue())
        else:
            write_samples(out, gan, z)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    print(f"wrote {args.n} samples to {out}", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    gan = GAN.load(args.checkpoint, backend=args.backend)
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
    except (UsageError, DataError, CheckpointError, BackendError, DivergenceError, OSError) as e:
        # One line, never a traceback: the message names the file or option at fault.
        message = f"{e.filename}: {e.strerror or e}" if isinstance(e, OSError) and e.filename else str(e)
        print(f"tinygan {args.command}: error: {' '.join(message.split())}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"tinygan {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
