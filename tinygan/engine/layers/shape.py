"""Layers that only change the shape of each sample: between dense and convolutional stacks."""

from __future__ import annotations

from typing import Any

from ...backend import Array
from .base import Layer


class Reshape(Layer):
    """``(N, …)`` → ``(N, *shape)``, the same values in the same (row-major) order; ``shape`` excludes the batch.

    A Dense output becomes a convolution's channels-last input with ``Reshape((H, W, C))``. Backward
    reshapes ``dy`` back to the input's shape.
    """

    def __init__(self, shape: Any) -> None:
        self.shape = tuple(int(d) for d in shape)

    def forward(self, x: Array) -> Array:
        self.in_shape = tuple(x.shape)
        return self.xp.reshape(x, (x.shape[0], *self.shape))

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        return self.xp.reshape(dy, self.in_shape) if need_dx else None


class Flatten(Layer):
    """``(N, H, W, C)`` (or any ``(N, …)``) → ``(N, H·W·C)`` rows in row-major (h, w, c) order, for a Dense after it."""

    def forward(self, x: Array) -> Array:
        self.in_shape = tuple(x.shape)
        return self.xp.reshape(x, (x.shape[0], -1))

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        return self.xp.reshape(dy, self.in_shape) if need_dx else None
