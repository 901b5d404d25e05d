"""Model families on the command line: which class a ``--model`` preset builds and which options it
takes, what a diverged run of each suggests, and what a VAE adds -- reconstructions during
training and ``sample --reconstruct``.
"""

from __future__ import annotations

import argparse
import io
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from ..data import DATASETS, Dataset, load_dataset
from ..data.validate import check_samples
from ..evaluation.pictures import corrupt, write_reconstructions
from ..io.errors import UsageError
from ..io.files import atomic_write_bytes
from ..models.config import PRESETS
from ..models.vae_config import VAE_PRESETS, VAEConfig, vae_preset_config, vae_preset_for
from .api import GAN, VAE, load_model
from .options import check_model_memory

MODEL_NAMES = (*PRESETS, *VAE_PRESETS)
RECONSTRUCTED = 30  # images shown in a run's reconstructions.png


def family(preset: str) -> type:
    """The model class that preset ``preset`` builds."""
    return VAE if preset in VAE_PRESETS else GAN


def check_options(preset: str, overrides: dict[str, Any], conditional: bool = False) -> None:
    """Refuse model options that the preset's family does not have, naming the option."""
    cls = family(preset)
    known = {f.name for f in fields(cls.config_class)}
    other = "GAN" if cls is VAE else "VAE"
    for key in overrides:
        if key not in known:
            raise UsageError(f"--{key.replace('_', '-')}: a {other} option, not one of --model {preset}")
    if conditional and cls is VAE:
        raise UsageError(f"--conditional: a GAN option, not one of --model {preset}")
    if "conditioning" in overrides and not conditional:
        raise UsageError("--conditioning: chooses how a conditional GAN's D sees the class; add --conditional")


def class_options(conditional: bool, dataset: Dataset) -> dict[str, Any]:
    """The config fields of a conditional GAN for ``dataset`` (its class count and names); none for others."""
    if not conditional:
        return {}
    if dataset.labels is None:
        raise UsageError(f"--conditional: dataset {dataset.name} has no class labels; use digits, mnist, "
                         "fashion-mnist, or an .npz file holding x, y (class labels) and optionally names")
    return {"n_classes": dataset.n_classes, "class_names": list(dataset.class_names)}


def training_labels(model: Any, dataset: Dataset) -> np.ndarray | None:
    """The labels a model trains on: the dataset's for a conditional GAN, none for other models."""
    return dataset.labels if getattr(model.config, "n_classes", 0) else None


def build_vae(preset: str, dataset: Dataset, overrides: dict[str, Any], backend: Any, seed: int) -> tuple[VAE, str]:
    """The VAE of ``preset`` for ``dataset`` with model options ``overrides`` (checked by :func:`check_options`),
    and the preset it resolved to."""
    try:
        config = vae_preset_config(preset, dataset.sample_shape, dataset.kind, **overrides)
    except (TypeError, ValueError) as e:
        raise UsageError(f"model options: {e}") from None
    check_model_memory(config, overrides)
    return VAE(config, backend=backend, seed=seed), vae_preset_for(preset, dataset.kind)


def from_saved_config(preset: str, saved: Any, backend: Any, seed: int) -> GAN | VAE:
    """A fresh model from a run's saved model config (``ValueError``/``TypeError`` when unusable)."""
    cls = family(preset)
    return cls(cls.config_class.from_json(saved), backend=backend, seed=seed)


def remedies(model: Any) -> tuple[str, str, str]:
    """(lower learning-rate options, their names, further remedies) for a run of ``model`` that diverged."""
    c = model.config
    if isinstance(c, VAEConfig):
        return f"--lr {c.lr / 10:g}", "--lr", ""
    return (f"--lr-g {c.lr_g / 10:g} --lr-d {c.lr_d / 10:g}", "--lr-g/--lr-d",
            "; label smoothing (--real-label 0.9) or, in a new run, BatchNorm in the generator (--g-batchnorm yes)")


def originals_for(model: Any, dataset_name: str, data_dir: str | None, dataset: Dataset) -> Any:
    """Images whose reconstructions a run shows: the first test images of a named dataset, else the first
    training images; ``None`` for a model that does not reconstruct, or for points."""
    if not isinstance(model, VAE) or dataset.kind != "image":
        return None
    if dataset_name in DATASETS:
        return load_dataset(dataset_name, data_dir=data_dir, split="test", n=RECONSTRUCTED).x
    return dataset.x[:RECONSTRUCTED]


# -- sample --reconstruct ----------------------------------------------------------------------


def cmd_reconstruct(args: argparse.Namespace) -> int:
    """``sample --reconstruct SOURCE``: reconstruct the first ``-n`` images of SOURCE, corrupted first with
    ``--noise``; ``.npy`` writes the reconstructions, ``.png`` originals (, corrupted) and reconstructions."""
    out = Path(args.out)
    model = load_model(args.checkpoint, backend=args.backend)
    if not isinstance(model, VAE):
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
