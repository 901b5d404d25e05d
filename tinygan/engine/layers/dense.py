"""The affine layer: ``y = x W + b``."""

from __future__ import annotations

import math

from ...backend import Array
from .base import Layer


class Dense(Layer):
    """Affine map ``y = x W + b`` with ``x: (N, n_in)``, ``W: (n_in, n_out)``.

    Backward: ``dW = xᵀ dy``, ``db = Σ_rows dy``, ``dx = dy Wᵀ``.
    Initialisation: ``"he"`` (std √(2 / ((1 + leak²) n_in)), for ReLU-family
    activations) or ``"glorot"`` (std √(2 / (n_in + n_out)), for tanh, sigmoid
    or a logit output).
    """

    def __init__(self, n_in: int, n_out: int, init: str = "glorot", leak: float = 0.0) -> None:
        if init not in ("he", "glorot"):
            raise ValueError(f"Dense init must be 'he' or 'glorot', got {init!r}")
        self.n_in, self.n_out, self.init, self.leak = n_in, n_out, init, leak

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"W": (self.n_in, self.n_out), "b": (self.n_out,)}

    def init_params(self, params: dict[str, Array]) -> None:
        if self.init == "he":
            std = math.sqrt(2.0 / ((1.0 + self.leak**2) * self.n_in))
        else:
            std = math.sqrt(2.0 / (self.n_in + self.n_out))
        w = params["W"]
        w[...] = self.rng.normal(w.shape, w.dtype)
        w *= std
        params["b"][...] = 0

    def forward(self, x: Array) -> Array:
        self.x = x
        y = self.ops.matmul(x, self.params["W"])
        y += self.params["b"]
        return y

    writes_first = True

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        if need_dparams:
            self.add_gradient("W", lambda out: self.ops.matmul(self.x.T, dy, out=out))
            self.add_gradient("b", lambda out: self.ops.sum(dy, axis=0, out=out))
        return self.ops.matmul(dy, self.params["W"].T) if need_dx else None
