"""Class-conditional GANs: how G and D are told the class of what they make and judge.

With ``n_classes = K > 0`` a GAN learns ``p(x | y)`` for K classes. G always receives the class with
its latent, as ``[z, onehot(y)]``: a one-hot vector into G's first Dense layer adds that layer's row
for class y, so the one-hot is a learned class embedding. D judges an image with its class in one of
two forms (``conditioning``):

* ``concat`` (Mirza & Osindero, 2014): D's input is ``[x, onehot(y)]``, built per sample before
  packing, so a packed group carries each of its samples' classes;
* ``projection`` (Miyato & Koyama, 2018): D ends in :class:`~tinygan.engine.layers.ProjectionHead`, whose
  logit gains ``⟨E[y], φ(x)⟩``, φ(x) the features of D's last hidden layer (summed over a group's
  classes with packing).

Generated samples are asked for the classes of the real batch they are judged beside, so each class
is seen as often among fakes as among real images, and WGAN-GP interpolates between a real and a
generated image of the same class. Gradient penalties are taken with respect to the image alone:
in the concat form the one-hot columns of ``∇D`` are masked out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import Array, Backend
from ..engine.layers import Layer, ProjectionHead
from ..engine.network import Sequential
from .classes import default_names
from .model import check_io, walk


def class_names(config: Any) -> list[str]:
    """The names of a conditional config's classes (``"0"``, ``"1"``, … when it gives none); ``[]`` if unconditional."""
    k = getattr(config, "n_classes", 0)
    return list(config.class_names) if k and config.class_names else default_names(k)


def input_sizes(config: Any) -> tuple[int, int]:
    """(G's input width, D's input width): the one-hot joins z, and joins x in the concat form."""
    k = config.n_classes
    joined = k if config.conditioning == "concat" else 0
    return config.latent_dim + k, (config.data_dim + joined) * config.pack


def with_projection_head(layers: list[Layer], config: Any) -> list[Layer]:
    """D's layers of a projection discriminator: the last Dense (to the logit) becomes a ProjectionHead."""
    if not config.n_classes or config.conditioning != "projection":
        return layers
    return [*layers[:-1], ProjectionHead(layers[-1].n_in, config.n_classes)]


def check_discriminator(layers: list[Layer], n_in: int, config: Any) -> None:
    """Raise ``ValueError`` unless ``layers`` map ``n_in`` features to one logit (through a ProjectionHead of
    ``n_classes`` rows for the projection form)."""
    if not config.n_classes or config.conditioning != "projection":
        check_io(layers, n_in, 1, "discriminator")
        return
    head = layers[-1] if layers else None
    if not isinstance(head, ProjectionHead) or head.n_classes != config.n_classes:
        raise ValueError(f"a projection discriminator must end in ProjectionHead(features, {config.n_classes}), "
                         f"got {type(head).__name__}")
    got = walk(layers)[0]
    if got != n_in:
        raise ValueError(f"discriminator must take {n_in} features, got {got or 'no Dense layer'}")


class Conditioning:
    """Feeds the classes to a conditional GAN's networks: G's input, D's input, and back again.

    ``labels`` are int64 device arrays ``(N,)``, one class per sample. ``D`` is the discriminator,
    whose last layer is told the classes in the projection form.
    """

    def __init__(self, config: Any, D: Sequential, backend: Backend) -> None:
        self.xp, self.backend = backend.xp, backend
        self.k, self.pack, self.data_dim = config.n_classes, config.pack, config.data_dim
        self.concat = config.conditioning == "concat"
        self.dtype = backend.dtype(config.dtype)
        self.head = None if self.concat else D.layers[-1]
        self.classes = self.xp.arange(self.k)  # one-hot codes compare against it; kept, never rebuilt

    def one_hot(self, labels: Array, dtype: Any) -> Array:
        """``(N, K)``: row n is 1 in column ``labels[n]``, 0 elsewhere."""
        return self.xp.astype(labels[:, None] == self.classes[None, :], dtype)

    def generator_input(self, z: Array, labels: Array) -> Array:
        """``[z, onehot(y)]``: G's input."""
        return self.xp.concat([z, self.one_hot(labels, z.dtype)], axis=1)

    def discriminator_input(self, x: Array, labels: Array) -> Array:
        """What D judges of samples ``x`` of classes ``labels``, before packing.

        Concat: ``[x, onehot(y)]``. Projection: ``x``, with the classes of each packed group
        handed to the head (the same for real and generated rows of one update).
        """
        if self.concat:
            return self.xp.concat([x, self.one_hot(labels, x.dtype)], axis=1)
        self.head.set_labels(self.xp.reshape(labels, (labels.shape[0] // self.pack, self.pack)))
        return x

    def image_gradient(self, grad: Array) -> Array:
        """The gradient with respect to the images of ``grad``, a gradient per sample of D's input."""
        return grad[:, : self.data_dim] if self.concat else grad

    def penalty_mask(self) -> Array | None:
        """For the concat form, ``(1, pack·(D + K))``: 1 on the image columns of a packed row, 0 on the one-hots."""
        if not self.concat:
            return None
        row = np.concatenate([np.ones(self.data_dim), np.zeros(self.k)])
        return self.backend.asarray(np.tile(row, self.pack)[None, :], dtype=self.dtype)

    def spread_input(self, z: Array) -> Array:
        """G's input for latents ``z`` with the classes in turn (0, 1, …, K−1, 0, …): a balanced batch."""
        labels = self.xp.arange(z.shape[0]) % self.k
        return self.generator_input(z, labels)
