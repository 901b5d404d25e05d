"""Inverted dropout: units zeroed at random in training, the identity in evaluation."""

from __future__ import annotations

from ..backend import Array
from .base import Layer


class Dropout(Layer):
    """Inverted dropout: in training, zero each unit with probability ``p`` and scale the rest by 1/(1−p).

    Backward applies the same mask: ``dx = dy · mask``. In evaluation mode it is the identity.
    """

    def __init__(self, p: float = 0.3) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Array) -> Array:
        if not self.training or self.p == 0.0:
            self.mask = None
            return x
        u = self.rng.uniform(x.shape, x.dtype, out=self.work.get("mask", x.shape, x.dtype))
        if self.kernels is not None:  # the formula below in one GPU kernel
            self.mask, y = self.kernels.dropout(u, x, self.p, 1.0 / (1.0 - self.p))
            return y
        self.mask = self.ops.at_least_mask(u, self.p, out=u)  # keep (1) where u ≥ p, in place of u
        self.mask *= 1.0 / (1.0 - self.p)
        return self.ops.multiply(x, self.mask)

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        if not need_dx:
            return None
        return dy if self.mask is None else dy * self.mask
