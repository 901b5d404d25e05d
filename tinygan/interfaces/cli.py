"""Command line: ``python -m tinygan train | sample | eval``.

Orchestration only: ``train`` lives in :mod:`tinygan.interfaces.train_command`, ``sample`` in
:mod:`tinygan.interfaces.sample_command`; ``eval`` loads a checkpoint through the Python API and prints what
its samples measure, generated a chunk at a time, so memory does not grow with their number.
Every failure the user can cause is one line on stderr, ``tinygan <command>: error: ...``, and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..backend import BackendError
from ..evaluation.evaluate import EVAL_BYTES_PER_SAMPLE, evaluate_model
from ..io.errors import CheckpointError, DataError, DivergenceError, MemoryRequestError, UsageError, printable
from ..io.memory import check_fits
from .api import load_model
from .console import ProgressDisplay
from .options import MODEL_OPTIONS, build_parser
from .sample_command import GRID_LIMIT, cmd_sample
from .train_command import EXIT_INTERRUPTED, cmd_train

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "GRID_LIMIT", "MODEL_OPTIONS", "ProgressDisplay", "build_parser", "main"]

EXIT_ERROR = 2


def cmd_eval(args: argparse.Namespace) -> int:
    model = load_model(args.checkpoint, backend=args.backend)
    if args.n is not None:
        check_fits(args.n * EVAL_BYTES_PER_SAMPLE, f"--n {args.n}", UsageError)
    result = evaluate_model(model, n=args.n, data_dir=args.data_dir, seed=args.seed or 0)
    if result is None:
        raise UsageError(
            f"--checkpoint {args.checkpoint}: no metrics for dataset {model.dataset_name!r} "
            "(metrics exist for digits, mnist, fashion-mnist, ring and grid)"
        )
    print(json.dumps(result, indent=2))
    return 0


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "eval": cmd_eval}


def main(argv: list[str] | None = None) -> int:
    args = _escaping(build_parser()).parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (UsageError, DataError, CheckpointError, BackendError, DivergenceError, OSError, MemoryError) as e:
        # One line, never a traceback: the message names the file or option at fault.
        print(f"tinygan {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"tinygan {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _escaping(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser`` whose errors (and its commands' errors) show what the user typed with control characters escaped."""
    commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for each in [parser, *(sub for action in commands for sub in action.choices.values())]:
        each.error = (lambda error: lambda message: error(printable(message)))(each.error)
    return parser


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename:
        message = f"{e.filename}: {e.strerror or e}"
    elif isinstance(e, MemoryError) and not isinstance(e, MemoryRequestError):  # unforeseen: numpy says how much
        message = f"out of memory ({e or 'no details'})"
    else:
        message = str(e)
    return printable(" ".join(message.split()))
