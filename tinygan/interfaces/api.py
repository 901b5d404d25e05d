"""The Python API: the models as ``import tinygan`` gives them, with training and files attached.

:class:`tinygan.models.gan.GANModel` and :class:`tinygan.models.vae.VAEModel` are the models alone (networks, step,
sampling, state); the classes here add what needs the layers above the model -- ``fit`` (the
training loop) and ``save`` / ``load`` (a checkpoint holds the model and where training is in
the data) -- so that a model never imports the trainer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend import Backend
from ..models.gan import GANModel
from ..models.vae import VAEModel
from ..training.state import DataPosition, load_training, save_training
from ..training.trainer import Progress, fit


class Trainable:
    """``fit``, ``save`` and ``load`` for a model class (mixed in before it).

    ``data_position`` says where in the data the next :meth:`fit` continues.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.data_position = DataPosition()

    def fit(
        self,
        x: np.ndarray,
        epochs: float | None = None,
        steps: int | None = None,
        batch_size: int | None = None,
        log_every: int = 100,
        callback: Callable[[Progress], bool | None] | None = None,
        *,
        y: np.ndarray | None = None,
    ) -> list[dict[str, float]]:
        """Train on ``x`` until ``steps`` steps (or ``epochs`` passes over ``x``) are done in all.

        ``x``: ``(N, *data_shape)`` or ``(N, data_dim)``; uint8 images, float images in [0, 1], or float
        points. ``y``: integer class labels ``(N,)`` in ``0..n_classes−1``, for a conditional GAN
        (``n_classes > 0``), which needs them. Counts are totals for the run, so a loaded checkpoint
        continues to the same end. ``callback(progress)`` runs after every step; returning ``True``
        stops training. Returns one record per ``log_every`` steps (see :func:`tinygan.training.trainer.fit`).
        """
        return fit(self, x, self.data_position, epochs, steps, batch_size, log_every, callback, y)

    def save(self, path: str, extra_meta: dict[str, Any] | None = None) -> None:
        """Write a checkpoint (atomically) that :meth:`load` restores, training state included.

        Missing parent folders are created; a model holding a non-finite value is refused
        (:class:`~tinygan.io.errors.DivergenceError`) and nothing is written.
        """
        save_training(path, self, self.data_position, extra_meta)

    @classmethod
    def load(cls, path: str, backend: str | Backend | None = None) -> Any:
        """Rebuild the model from a checkpoint written by :meth:`save`, ready to sample or to train on."""
        model, model.data_position = load_training(path, {cls.kind: cls}, backend)
        return model


class GAN(Trainable, GANModel):
    __doc__ = GANModel.__doc__ + """
    Train with :meth:`fit`, draw with :meth:`sample`, persist with :meth:`save` / :meth:`load`.
    ``data_position`` says where in the data the next :meth:`fit` continues.
    """


class VAE(Trainable, VAEModel):
    __doc__ = VAEModel.__doc__ + """
    Train with :meth:`fit`, draw with :meth:`sample`, reconstruct with :meth:`reconstruct`, measure
    with :meth:`elbo`, persist with :meth:`save` / :meth:`load`.
    """


MODELS = {GAN.kind: GAN, VAE.kind: VAE}


def model_class(preset: str) -> type[GAN] | type[VAE]:
    """The model class whose family has preset ``preset`` (``ValueError`` naming the presets if none)."""
    for model in MODELS.values():
        if preset in model.config_class.PRESETS:
            return model
    known = ", ".join(name for model in MODELS.values() for name in model.config_class.PRESETS)
    raise ValueError(f"unknown model preset {preset!r}: expected one of {known}")


def load_model(path: str, backend: str | Backend | None = None) -> GAN | VAE:
    """The model saved at ``path``, of whichever kind the checkpoint holds (``gan`` or ``vae``)."""
    model, model.data_position = load_training(path, MODELS, backend)
    return model
