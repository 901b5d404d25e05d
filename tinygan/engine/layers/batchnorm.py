"""Batch normalisation, with the backward pass through the batch's mean and variance."""

from __future__ import annotations

from typing import Any

from ...backend import Array, Random
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
        xp = self.xp
        xc = self.work.get("xhat", x.shape, x.dtype)  # None on a namespace without out=
        y = None if xc is None else xp.empty_like(x)  # holds (x − μ)² until y is computed
        if self.training:
            mean = xp.mean(x, axis=0)
            xc, y = self._in_rows(lambda *a: self._center(*a, square=True), x, mean, xc, y)
            var = xp.mean(y, axis=0)
            m, n = self.momentum, x.shape[0]
            self.running_mean *= 1 - m
            self.running_mean += m * mean
            self.running_var *= 1 - m
            self.running_var += m * var * (n / max(n - 1, 1))  # unbiased, as PyTorch keeps it
        else:
            mean, var = self.running_mean, self.running_var
            xc, _ = self._in_rows(self._center, x, mean, xc, y)
        self.inv_std = 1.0 / xp.sqrt(var + self.eps)
        self.xhat, y = self._in_rows(self._normalize, xc, self.inv_std, xc, y)
        return y

    def _in_rows(self, formula: Any, x: Array, vector: Array, out1: Array | None, out2: Array | None) -> tuple:
        """``formula(x, vector, out1, out2)`` over blocks of rows on every core, or whole where there is no out=."""
        if not self.ops.native:
            return formula(x, vector, None, None)
        self.by_rows(lambda lo, hi: formula(x[lo:hi], vector, out1[lo:hi], out2[lo:hi]), x)
        return out1, out2

    def _center(self, x: Array, mean: Array, xc: Array | None, sq: Array | None, square: bool = False) -> tuple:
        """``x − μ``, and with ``square`` ``(x − μ)²``."""
        xc = self.ops.subtract(x, mean, out=xc)
        return xc, self.ops.multiply(xc, xc, out=sq) if square else None

    def _normalize(self, xc: Array, inv_std: Array, xhat: Array | None, y: Array | None) -> tuple:
        """``x̂ = (x − μ)/√(σ² + ε)`` (in place of ``x − μ``) and ``y = γ x̂ + β``."""
        xc *= inv_std
        y = self.ops.multiply(xc, self.params["gamma"], out=y)
        y += self.params["beta"]
        return xc, y

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
        if self.kernels is not None:  # the formula of _dx in one GPU kernel
            return self.kernels.bn_dx(dy, self.xhat, sum_dy, sum_dy_xhat, scale, n)
        if not self.ops.native:
            return self._dx(dy, self.xhat, sum_dy, sum_dy_xhat, scale, None, None)
        dx = self.xp.empty_like(dy)
        self.by_rows(lambda lo, hi: self._dx(dy[lo:hi], self.xhat[lo:hi], sum_dy, sum_dy_xhat, scale, dx[lo:hi],
                                             tmp[lo:hi]), dy)
        return dx

    def _dx(self, dy: Array, xhat: Array, sum_dy: Array, sum_dy_xhat: Array, scale: Array, dx: Array | None,
            tmp: Array | None) -> Array:
        """The formula above, term by term, in ``dx``."""
        n = dy.shape[0] if dx is None else self.xhat.shape[0]  # a block's rows, of the batch's N
        dx = self.ops.multiply(dy, n, out=dx)
        dx -= sum_dy
        dx -= self.ops.multiply(xhat, sum_dy_xhat, out=tmp)
        dx *= scale / n
        return dx


class BatchNorm2d(BatchNorm):
    """Batch normalisation over the channels of channels-last ``x: (N, H, W, C)``: statistics over N, H and W.

    Exactly :class:`BatchNorm` on the ``(N·H·W, C)`` view of ``x`` (each pixel a row), so the formulas
    (and the fused GPU kernels) are the same; the running variance's unbiasing uses ``N·H·W`` rows,
    as PyTorch's ``BatchNorm2d`` does. The averaged generator's standing statistics find it as a BatchNorm.
    """

    def __init__(self, n_channels: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__(n_channels, momentum, eps)
        self.n_channels = n_channels

    writes_first = True  # as BatchNorm's backward, which it calls

    def forward(self, x: Array) -> Array:
        if x.ndim != 4 or x.shape[3] != self.n_channels:
            raise ValueError(f"BatchNorm2d expects (N, H, W, {self.n_channels}) input, got shape {tuple(x.shape)}")
        y = super().forward(self.xp.reshape(x, (-1, self.n_channels)))
        return self.xp.reshape(y, tuple(x.shape))

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        dx = super().backward(self.xp.reshape(dy, (-1, self.n_channels)), need_dx, need_dparams)
        return None if dx is None else self.xp.reshape(dx, tuple(dy.shape))
