"""Activations: ReLU, leaky ReLU, maxout, tanh and the sigmoid, each with its derivative."""

from __future__ import annotations

from typing import Any

from ...backend import Array, kernels_for
from .base import Layer


class ReLU(Layer):
    """``y = max(x, 0)``; backward passes ``dy`` where ``x > 0``."""

    def forward(self, x: Array) -> Array:
        self.mask = x > 0
        return self.xp.where(self.mask, x, 0.0)

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        return self.xp.where(self.mask, dy, 0.0) if need_dx else None


class LeakyReLU(Layer):
    """``y = x`` for ``x > 0``, else ``slope·x``; backward scales ``dy`` the same way."""

    def __init__(self, slope: float = 0.2) -> None:
        self.slope = slope

    def forward(self, x: Array) -> Array:
        if self.kernels is not None:  # the formula of _forward in one GPU kernel
            y, self.factor = self.kernels.leaky_relu(x, self.slope)
            return y
        if not self.ops.native:  # a namespace without out=: whole arrays, new ones
            y, self.factor = self._forward(x, None, None)
            return y
        y, self.factor = self.xp.empty_like(x), self.work.get("factor", x.shape, x.dtype)
        self.by_rows(lambda lo, hi: self._forward(x[lo:hi], self.factor[lo:hi], y[lo:hi]), x)
        return y

    def _forward(self, x: Array, factor: Array | None, y: Array | None) -> tuple[Array, Array]:
        # dy/dx as a multiplier, 1 where x > 0 and slope elsewhere, made by arithmetic on a 0/1
        # mask: a multiply is many times faster than a masked select (``where``) on a CPU, and
        # 1·(1 − slope) + slope rounds to exactly 1, so y is exactly x there.
        ops = self.ops
        factor = ops.positive_mask(x, out=factor)
        factor *= 1 - self.slope
        factor += self.slope
        return ops.multiply(x, factor, out=y), factor

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        if not need_dx:
            return None
        if not self.ops.native or self.kernels is not None:
            return self.ops.multiply(dy, self.factor)
        dx = self.xp.empty_like(dy)
        self.by_rows(lambda lo, hi: self.ops.multiply(dy[lo:hi], self.factor[lo:hi], out=dx[lo:hi]), dy)
        return dx


class Maxout(Layer):
    """Maxout (Goodfellow et al., 2013): ``y_j = max_k x_{j,k}`` over ``pieces`` consecutive inputs.

    ``x: (N, F·pieces)`` → ``y: (N, F)``; put a Dense of ``F·pieces`` outputs in front of it. Each
    unit is then a convex piecewise-linear function of the layer input with ``pieces`` pieces.
    Backward routes ``dy_j`` to the winning piece only: ``dx_{j,k} = dy_j · [k = argmax_k x_{j,k}]``.
    """

    def __init__(self, pieces: int = 5) -> None:
        if pieces < 1:
            raise ValueError(f"Maxout pieces must be >= 1, got {pieces}")
        self.pieces = pieces

    def forward(self, x: Array) -> Array:
        xp = self.xp
        n, width = x.shape
        if width % self.pieces:
            raise ValueError(f"Maxout({self.pieces}) needs a multiple of {self.pieces} inputs, got {width}")
        grouped = xp.reshape(x, (n, width // self.pieces, self.pieces))
        # One-hot of the winner (the first one on ties, as argmax picks), kept for backward.
        winner = xp.argmax(grouped, axis=2)
        self.onehot = xp.astype(winner[..., None] == xp.arange(self.pieces), x.dtype)
        return xp.max(grouped, axis=2)

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        if not need_dx:
            return None
        dx = self.onehot * dy[..., None]
        return self.xp.reshape(dx, (dy.shape[0], dy.shape[1] * self.pieces))


class Tanh(Layer):
    """``y = tanh x``; ``dx = dy (1 − y²)``."""

    def forward(self, x: Array) -> Array:
        self.y = self.xp.tanh(x)
        return self.y

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        if not need_dx:
            return None
        if self.kernels is not None:  # the formula of _backward in one GPU kernel
            return self.kernels.tanh_grad(dy, self.y)
        if not self.ops.native:
            return self._backward(dy, self.y, None)
        dx = self.xp.empty_like(dy)
        self.by_rows(lambda lo, hi: self._backward(dy[lo:hi], self.y[lo:hi], dx[lo:hi]), dy)
        return dx

    def _backward(self, dy: Array, y: Array, dx: Array | None) -> Array:
        dx = self.ops.multiply(y, y, out=dx)  # y², then 1 − y², then dy·(1 − y²), all in dx
        dx = self.ops.subtract(1.0, dx, out=dx)
        dx *= dy
        return dx


def sigmoid(x: Array, xp: Any) -> Array:
    """Logistic function in its tanh form, σ(x) = ½ tanh(x/2) + ½: no exp, so no overflow."""
    kernels = kernels_for(xp)
    if kernels is not None:  # the same formula in one GPU kernel
        return kernels.sigmoid(x)
    return 0.5 * xp.tanh(0.5 * x) + 0.5


class Sigmoid(Layer):
    """``y = σ(x)``; ``dx = dy · y (1 − y)``."""

    def forward(self, x: Array) -> Array:
        self.y = sigmoid(x, self.xp)
        return self.y

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        return dy * self.y * (1.0 - self.y) if need_dx else None
