"""Batch normalisation, with the backward pass through the batch's mean and variance."""

from __future__ import annotations

from typing import Any

from ..backend import Array, Random
from .base import Layer


class BatchNorm(Layer):
    """Batch normalisation over features of ``x: (N, F)``.

    Training: ``x̂ = (x − μ_B) / √(σ²_B + ε)``, ``y = γ x̂ + β`` with the batch's
    mean and (biased) variance; running statistics are updated with
    ``momentum``. Evaluation: the running statistics replace the batch's.

    Backward in training mode, through μ_B and σ²_B as well as x:
    ``dγ = Σ dy·x̂``, ``dβ = Σ dy``,
    ``dx = γ / (N √(σ²_B + ε)) · (N dy − Σ dy − x̂ Σ dy·x̂)``.
    """

    def __init__(self, n_features: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        self.n_features, self.momentum, self.eps = n_features, momentum, eps

    writes_first = True

    def bind(self, xp: Any, rng: Random) -> None:
        super().bind(xp, rng)
        self.running_mean: Array | None = None  # allocated with the network's dtype in init_params
        self.running_var: Array | None = None

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"gamma": (self.n_features,), "beta": (self.n_features,)}

    def init_params(self, params: dict[str, Array]) -> None:
        params["gamma"][...] = 1
        params["beta"][...] = 0
        dtype = params["gamma"].dtype
        self.running_mean = self.xp.zeros((self.n_features,), dtype=dtype)
        self.running_var = self.xp.ones((self.n_features,), dtype=dtype)

    def buffers(self) -> dict[str, Array]:
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def forward(self, x: Array) -> Array:
        if self.kernels is not None:
            return self._forward_fused(x)
        xp, ops = self.xp, self.ops
        y = None
        if self.training:
            mean = xp.mean(x, axis=0)
            xc = ops.subtract(x, mean, out=self.work.get("xhat", x.shape, x.dtype))
            y = ops.multiply(xc, xc)  # the output array, holding (x − μ)² until y is computed
            var = xp.mean(y, axis=0)
            m, n = self.momentum, x.shape[0]
            self.running_mean *= 1 - m
            self.running_mean += m * mean
            self.running_var *= 1 - m
            self.running_var += m * var * (n / max(n - 1, 1))  # unbiased, as PyTorch keeps it
        else:
            mean, var = self.running_mean, self.running_var
            xc = ops.subtract(x, mean, out=self.work.get("xhat", x.shape, x.dtype))
        self.inv_std = 1.0 / xp.sqrt(var + self.eps)
        xc *= self.inv_std
        self.xhat = xc
        y = ops.multiply(xc, self.params["gamma"], out=y)
        y += self.params["beta"]
        return y

    def _forward_fused(self, x: Array) -> Array:
        """:meth:`forward`'s formulas in four GPU kernels and two reductions."""
        k, xp = self.kernels, self.xp
        if self.training:
            mean = xp.mean(x, axis=0)
            xc, sq = k.bn_center(x, mean)
            var = xp.mean(sq, axis=0)
            n = x.shape[0]
            k.bn_running(mean, var, self.momentum, n / max(n - 1, 1), self.running_mean, self.running_var)
        else:
            mean, var = self.running_mean, self.running_var
            xc, _ = k.bn_center(x, mean)
        self.inv_std = k.bn_inv_std(var, self.eps)
        self.xhat, y = k.bn_normalize(xc, self.inv_std, self.params["gamma"], self.params["beta"])
        return y

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        xp, ops = self.xp, self.ops
        tmp = self.work.get("tmp", dy.shape, dy.dtype)
        sum_dy = xp.sum(dy, axis=0)
        sum_dy_xhat = xp.sum(ops.multiply(dy, self.xhat, out=tmp), axis=0)
        if need_dparams:
            self.add_gradient("gamma", lambda out: sum_dy_xhat)
            self.add_gradient("beta", lambda out: sum_dy)
        if not need_dx:
            return None
        scale = self.params["gamma"] * self.inv_std
        if not self.training:  # running statistics are constants: the layer is affine
            return dy * scale
        n = dy.shape[0]
        if self.kernels is not None:  # the formula below in one GPU kernel
            return self.kernels.bn_dx(dy, self.xhat, sum_dy, sum_dy_xhat, scale, n)
        dx = dy * n  # the formula above, term by term, in one new array
        dx -= sum_dy
        dx -= ops.multiply(self.xhat, sum_dy_xhat, out=tmp)
        dx *= scale / n
        return dx
