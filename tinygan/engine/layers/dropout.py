"""Inverted dropout: units zeroed at random in training, the identity in evaluation."""

from __future__ import annotations

from ...backend import Array
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
        if self.kernels is not None:  # the formula of _forward in one GPU kernel
            self.mask, y = self.kernels.dropout(u, x, self.p, 1.0 / (1.0 - self.p))
            return y
        if not self.ops.native:  # a namespace without out=: whole arrays, new ones
            self.mask, y = self._forward(u, x, None)
            return y
        self.mask, y = u, self.xp.empty_like(x)  # the mask is made in place of u
        self.by_rows(lambda lo, hi: self._forward(u[lo:hi], x[lo:hi], y[lo:hi]), x)
        return y

    def _forward(self, u: Array, x: Array, y: Array | None) -> tuple[Array, Array]:
        """mask = [u ≥ p]/(1 − p), written over ``u``; y = x·mask."""
        mask = self.ops.at_least_mask(u, self.p, out=u if self.ops.native else None)
        mask *= 1.0 / (1.0 - self.p)
        return mask, self.ops.multiply(x, mask, out=y)

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        if not need_dx:
            return None
        if self.mask is None:
            return dy
        if not self.ops.native or self.kernels is not None:
            return dy * self.mask
        dx = self.xp.empty_like(dy)
        self.by_rows(lambda lo, hi: self.ops.multiply(dy[lo:hi], self.mask[lo:hi], out=dx[lo:hi]), dy)
        return dx
