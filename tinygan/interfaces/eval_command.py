"""``tinygan eval``: what a checkpoint's samples measure, on a built-in dataset or on the user's own data.

A model trained on a built-in dataset is measured as :func:`tinygan.evaluation.evaluate.evaluate_model`
says. One trained on a ``.npy``/``.npz`` file or a folder of PNG files is measured against that data
(:func:`tinygan.evaluation.own_data.evaluate_data`): ``--dataset`` names it, or else the run folder's
``config.json`` does, when the path it recorded is still there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..data import load_dataset
from ..evaluation.evaluate import EVAL_BYTES_PER_SAMPLE, LABELLED_IMAGES, MIXTURES, evaluate_model
from ..evaluation.own_data import BUILT_IN_SHAPES, check_built_in, evaluate_data
from ..io.errors import UsageError
from ..io.memory import check_fits
from .api import load_model


def cmd_eval(args: argparse.Namespace) -> int:
    model = load_model(args.checkpoint, backend=args.backend)
    if args.n is not None:
        check_fits(args.n * EVAL_BYTES_PER_SAMPLE, f"--n {args.n}", UsageError)
    print(json.dumps(measure(args, model), indent=2))
    return 0


def measure(args: argparse.Namespace, model: Any) -> dict[str, Any]:
    """The metrics ``tinygan eval`` prints for ``model``, loaded from ``args.checkpoint``."""
    given = getattr(args, "dataset", None)
    seed = args.seed or 0
    if given is not None and given.lower() in BUILT_IN_SHAPES:
        check_built_in(model, given.lower())
    if given is None or given.lower() in BUILT_IN_SHAPES:
        result = evaluate_model(model, n=args.n, data_dir=args.data_dir, seed=seed, dataset=given)
        if result is not None:
            return result
    source = given or recorded_dataset(args.checkpoint)
    if source is None:
        raise UsageError(
            f"--checkpoint {args.checkpoint}: no metrics for dataset {model.dataset_name!r} without its data: "
            "pass --dataset with the .npy/.npz file or PNG folder it was trained on (built-in metrics exist "
            "for digits, mnist, fashion-mnist, ring and grid)"
        )
    return evaluate_data(model, load_dataset(source, data_dir=args.data_dir), n=args.n, seed=seed)


def recorded_dataset(checkpoint: str) -> str | None:
    """The user's data path that the run folder of ``checkpoint`` recorded, if it is still there."""
    path = Path(checkpoint)
    folder = path if path.is_dir() else path.parent
    try:
        source = json.loads((folder / "config.json").read_text())["run"]["dataset"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(source, str) or source.lower() in (*MIXTURES, *LABELLED_IMAGES):
        return None
    return source if Path(source).expanduser().exists() else None
