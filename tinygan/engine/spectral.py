"""Spectral normalisation (Miyato et al., 2018): weights divided by their largest singular value.

A Dense layer ``y = xW + b`` is Lipschitz in ``x`` with constant ``σ(W)``, the largest singular
value of ``W``. :class:`SpectralDense` uses ``W_sn = W / σ(W)`` instead, so each such layer is
1-Lipschitz, and so is a discriminator made of them and of 1-Lipschitz activations (ReLU,
LeakyReLU, maxout): a constraint on D that needs no penalty and no clipping.

``σ(W)`` is estimated by power iteration with a persistent vector ``u`` of ``n_out`` entries, a
buffer saved with the model as BatchNorm's running statistics are. One iteration per training
step (:meth:`SpectralDense.power_iteration`, called by the model before each D update)::

    v ← Wu / ‖Wu‖,   u ← Wᵀv / ‖Wᵀv‖

and every forward uses ``σ = ‖Wu‖`` (which equals ``vᵀWu`` for ``v = Wu/‖Wu‖``) with the stored
``u`` and the current ``W``, so a forward after an optimizer step sees the new weights.

Backward holds ``u`` fixed, as Miyato et al. and common implementations do, and differentiates
exactly the function computed, ``y = x W/‖Wu‖ + b``. With ``G = xᵀ dy`` (the gradient with
respect to ``W_sn``) and ``v = Wu/σ``: ``dσ = vᵀ dW u``, so

    ∂L/∂W = (G − ⟨G, W_sn⟩ v uᵀ) / σ,     ∂L/∂b = Σₙ dy,     ∂L/∂x = dy W_snᵀ.

:class:`SpectralConv2d` does the same to a convolution's weight *as a matrix*: its ``(k·k·c_in, c_out)``
matrix, the transpose of Miyato et al.'s ``(c_out, c_in·k·k)`` and so of the same singular values.
This bounds the reshaped matrix's norm, not the convolution's own operator norm (which can be up to
``k/s`` times larger, since each input pixel meets up to ``⌈k/s⌉²`` taps), as in Miyato et al. and
common implementations. The gradient formulas are those above, with ``G = im2col(x)ᵀ dy``.
"""

from __future__ import annotations

from typing import Any

from ..backend import Array
from .layers import Conv2d, Dense, Layer

INIT_ITERATIONS = 10  # power iterations on the initial weights, so the first steps see a good σ
NORM_EPS = 1e-12  # keeps a zero vector from dividing by zero in the power iteration


class SpectralNorm:
    """What a spectrally normalised layer adds to one whose weight matrix ``params["W"]`` is ``(inputs, outputs)``.

    Mixed in before the layer class: the vector ``u``, the power iteration, ``W_sn`` and the gradient through it.
    """

    def bind(self, xp: Any, rng: Any) -> None:
        super().bind(xp, rng)
        self.u: Array | None = None  # allocated with the network's dtype in init_params

    def init_params(self, params: dict[str, Array]) -> None:
        super().init_params(params)
        w = params["W"]
        u = self.rng.normal((w.shape[1], 1), w.dtype)
        self.u = u / self.xp.sqrt(self.xp.sum(u * u))
        for _ in range(INIT_ITERATIONS):
            self.power_iteration()

    def buffers(self) -> dict[str, Array]:
        return {"u": self.u}

    def power_iteration(self) -> None:
        """One step of ``v ← Wu/‖Wu‖, u ← Wᵀv/‖Wᵀv‖``, updating the stored ``u`` in place."""
        w = self.params["W"]
        v = self.ops.matmul(w, self.u, out=self.work.get("v", (w.shape[0], 1), w.dtype))
        v = self.ops.divide(v, self.xp.sqrt(self.xp.sum(v * v)) + NORM_EPS, out=v)
        u = self.ops.matmul(w.T, v, out=self.work.get("u", (w.shape[1], 1), w.dtype))
        self.u[...] = u / (self.xp.sqrt(self.xp.sum(u * u)) + NORM_EPS)

    @property
    def weight(self) -> Array:
        """``W_sn`` of the latest forward."""
        return self.w_sn

    def normalise(self) -> Array:
        """``σ = ‖Wu‖``, ``v = Wu/σ`` and ``W_sn = W/σ`` from the current ``W`` and the stored ``u``."""
        xp, ops, w = self.xp, self.ops, self.params["W"]
        wu = ops.matmul(w, self.u, out=self.work.get("wu", (w.shape[0], 1), w.dtype))
        self.sigma = xp.sqrt(xp.sum(wu * wu))
        self.v = ops.divide(wu, self.sigma, out=wu)
        self.w_sn = ops.divide(w, self.sigma, out=self.work.get("w_sn", w.shape, w.dtype))
        return self.w_sn

    def add_weight_gradient(self, g: Array) -> None:
        """Add ``∂L/∂W`` given ``g = ∂L/∂W_sn`` (overwritten: it is scratch): ``(g − ⟨g, W_sn⟩ v uᵀ)/σ``."""
        outer = self.ops.multiply(self.v, self.u.T, out=self.work.get("outer", g.shape, g.dtype))
        inner = self.xp.sum(self.ops.multiply(g, self.w_sn, out=self.work.get("gw", g.shape, g.dtype)))
        outer *= inner
        g = self.ops.subtract(g, outer, out=g)
        g /= self.sigma
        self.add_gradient("W", lambda out: g)


class SpectralDense(SpectralNorm, Dense):
    """:class:`~tinygan.engine.layers.Dense` with ``W`` replaced by ``W / σ(W)`` (see the module docstring)."""

    def forward(self, x: Array) -> Array:
        w_sn = self.normalise()
        self.x = x
        y = self.ops.matmul(x, w_sn)
        y += self.params["b"]
        return y

    def backward(self, dy: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        if need_dparams:
            self.add_weight_gradient(self.ops.matmul(self.x.T, dy, out=self.work.get("dW", self.w_sn.shape, dy.dtype)))
            self.add_gradient("b", lambda out: self.ops.sum(dy, axis=0, out=out))
        return self.ops.matmul(dy, self.w_sn.T) if need_dx else None

    writes_first = True  # its gradients go through add_gradient


class SpectralConv2d(SpectralNorm, Conv2d):
    """:class:`~tinygan.engine.layers.Conv2d` with its ``(k·k·c_in, c_out)`` weight matrix divided by its σ.

    This bounds the reshaped matrix, not the convolution's operator norm (see the module docstring).
    """

    def _matrix(self) -> Array:
        return self.w_sn

    def forward(self, x: Array) -> Array:
        self.normalise()
        return super().forward(x)

    def _add_weight_gradient(self, compute: Any) -> None:
        w = self.params["W"]
        self.add_weight_gradient(compute(self.work.get("dW_sn", w.shape, w.dtype)))

    writes_first = True  # its gradients go through add_gradient


SPECTRAL = {Dense: SpectralDense, Conv2d: SpectralConv2d}


def spectral_normalised(layers: list[Layer]) -> list[Layer]:
    """``layers`` with every plain :class:`Dense` and :class:`Conv2d` replaced by its spectrally normalised twin."""
    out: list[Layer] = []
    for layer in layers:
        if type(layer) in SPECTRAL:
            spec = layer.spec()
            spec.pop("type")
            layer = SPECTRAL[type(layer)](**spec)
        out.append(layer)
    return out


def power_iterations(layers: list[Layer]) -> None:
    """One power iteration in every spectrally normalised layer of ``layers`` (once per D update)."""
    for layer in layers:
        if isinstance(layer, SpectralNorm):
            layer.power_iteration()
