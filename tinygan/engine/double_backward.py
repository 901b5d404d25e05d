"""The backward of the backward: the gradient of a function of ``∇ₓD(x)`` with respect to D's parameters.

Gradient penalties (WGAN-GP, R1) are functions of ``g = ∇ₓ Σₙ D(xₙ)``, the input gradient that
an ordinary backward pass from ``dy = 1`` computes; D's parameters ``θ`` enter ``g`` through
that backward pass. For ``P(g)``, the chain rule needs ``∂P/∂θ = ḡᵀ ∂g/∂θ`` with ``ḡ = ∂P/∂g``:
the reverse of the backward pass, run with ``ḡ`` as its seed.

The backward pass applies each layer's transposed Jacobian, last layer first:
``δ_in = Jᵀ δ_out``, ending at ``g = δ₀``. Reversing it visits the layers first to last and
carries ``ḡ`` forward as ``δ̄``, the adjoint of each layer's input gradient:

* **Dense** ``y = xW + b``: backward is ``δ_in = δ_out Wᵀ``. Its reverse gives
  ``∂/∂W += δ̄_inᵀ δ_out`` and ``δ̄_out = δ̄_in W``; the bias does not appear in the backward
  pass, so it gets no gradient here.
* **Piecewise-linear activations** (ReLU, LeakyReLU, maxout) and **Dropout** with its mask
  fixed by the forward pass: the Jacobian ``J`` depends on ``x`` only through which piece is
  active, which is constant between kinks, so ``∂J/∂x = 0`` almost everywhere and the reverse is
  linear again: ``δ̄_out = J δ̄_in``, the layer's linearisation applied to ``δ̄`` (a forward-mode
  tangent). For the elementwise ones ``J`` is diagonal, so ``J δ̄`` is their backward of ``δ̄``;
  maxout picks each unit's winning piece of ``δ̄``.
* **SpectralDense** (``W_sn = W/σ``): as Dense with ``W_sn``; the gradient with respect to
  ``W_sn`` then passes through the normalisation as in its own backward.
* **Conv2d** ``y = im2col(x) W + b``: backward is ``δ_in = col2im(δ_out Wᵀ)``, and col2im is the
  adjoint of im2col, so ``⟨δ̄_in, δ_in⟩ = ⟨im2col(δ̄_in), δ_out Wᵀ⟩``: ``∂/∂W += im2col(δ̄_in)ᵀ δ_out``
  and ``δ̄_out = im2col(δ̄_in) W``, the layer's forward without its bias -- Dense with the patches
  of ``δ̄`` for its rows. **ConvTranspose2d** (backward ``δ_in = im2col(δ_out) W``):
  ``∂/∂W += im2col(δ_out)ᵀ δ̄_in`` and ``δ̄_out = col2im(δ̄_in Wᵀ)``, again its forward without bias.
  **SpectralConv2d** passes the gradient with respect to ``W_sn`` through the normalisation.
* **Flatten**, **Reshape**: fixed linear maps, ``δ̄_out`` is ``δ̄_in`` reshaped as their forward does.
* **ProjectionHead** (a projection discriminator's last layer, ``a = h·(w + (C E)ₙ) + b``): like a
  Dense layer to one output whose weight vector depends on the row's classes, so
  ``∂/∂w += δ̄ᵀ δ_out`` and ``∂/∂E += Cᵀ (δ_out ⊙ δ̄)``; it must be the last layer.

So for such networks ``∂P/∂θ`` needs one backward pass (for every ``δ_out``) and one forward
sweep (for every ``δ̄_in``): each Dense layer adds ``δ̄_inᵀ δ_out`` to its weight gradient.
Layers whose second derivative is not zero (Tanh, Sigmoid) and layers that mix the rows of a
batch (BatchNorm, whose statistics make ``∇ₓ`` of one sample depend on the others) are refused.
"""

from __future__ import annotations

from typing import Any

from ..backend import Array, Ops, Workspace
from .layers import (
    Conv2d,
    ConvTranspose2d,
    Dense,
    Dropout,
    Flatten,
    Layer,
    LeakyReLU,
    Maxout,
    ProjectionHead,
    ReLU,
    Reshape,
)
from .network import Sequential
from .spectral import SpectralDense, SpectralNorm

CONVOLUTIONS = (Conv2d, ConvTranspose2d)  # SpectralConv2d is a Conv2d
SUPPORTED = (Dense, ReLU, LeakyReLU, Maxout, Dropout, *CONVOLUTIONS, Flatten, Reshape)  # SpectralDense is a Dense
WEIGHTED = (Dense, ProjectionHead, *CONVOLUTIONS)  # layers whose backward pass involves their weights


def check_supported(layers: list[Layer], what: str = "a penalised critic") -> None:
    """Raise ``ValueError`` naming the first layer whose second-order backward tinygan does not have."""
    for i, layer in enumerate(layers):
        if not isinstance(layer, SUPPORTED) and not (isinstance(layer, ProjectionHead) and i == len(layers) - 1):
            names = ", ".join(t.__name__ for t in SUPPORTED)
            raise ValueError(
                f"{what} needs the gradient of its input gradient, which tinygan computes for {names} and their "
                f"spectrally normalised twins, and a ProjectionHead as the last layer; layer {i} is "
                f"{type(layer).__name__}"
            )


class InputGradient:
    """``g = ∇ₓ Σₙ net(x)ₙ`` for a network of one output, and ``∂⟨ḡ, g⟩/∂θ`` added into its gradients.

    Call :meth:`forward` then :meth:`backward`, with no other pass of the network in between:
    the second reuses the caches of the first.
    """

    def __init__(self, net: Sequential) -> None:
        check_supported(net.layers)
        self.net = net
        xp = net.backend.xp
        self.xp, self.ops, self.work = xp, Ops(xp, net.backend.matmul), Workspace(xp)
        self.seeds: list[Array] = []

    def forward(self, x: Array) -> Array:
        """``g``, shaped like ``x``: each row is the gradient of that row's output (no layer mixes rows)."""
        xp = self.xp
        out = self.net.forward(x)
        dy = self.work.get("ones", out.shape, out.dtype)
        dy = xp.ones(out.shape, dtype=out.dtype) if dy is None else _filled(xp, dy)
        self.seeds = [None] * len(self.net.layers)
        for i in range(len(self.net.layers) - 1, -1, -1):
            self.seeds[i] = dy  # δ_out of layer i, which the reverse sweep needs
            dy = self.net.layers[i].backward(dy, need_dx=True, need_dparams=False)
        return dy

    def backward(self, g_bar: Array) -> None:
        """Add ``∂⟨ḡ, g⟩/∂θ`` (``ḡ`` held fixed) into the network's gradient buffer: ``∂P/∂θ`` for ``ḡ = ∂P/∂g``."""
        layers = self.net.layers
        last = max(i for i, layer in enumerate(layers) if isinstance(layer, WEIGHTED))
        d_bar = g_bar
        for i, layer in enumerate(layers[: last + 1]):
            if isinstance(layer, ProjectionHead):  # the last layer: no tangent beyond it
                layer.add_weight_gradients(d_bar, self.seeds[i])
            elif isinstance(layer, Dense):
                d_bar = self._dense(i, layer, d_bar, tangent=i < last)
            elif isinstance(layer, CONVOLUTIONS):
                d_bar = self._convolution(i, layer, d_bar, tangent=i < last)
            elif isinstance(layer, (Flatten, Reshape)):
                d_bar = layer.forward(d_bar)  # a fixed linear map: its Jacobian applied to δ̄ is its forward
            elif isinstance(layer, Maxout):
                n, width = d_bar.shape
                grouped = self.xp.reshape(d_bar, (n, width // layer.pieces, layer.pieces))
                d_bar = self.xp.sum(layer.onehot * grouped, axis=2)
            else:  # ReLU, LeakyReLU, Dropout: a diagonal Jacobian, so J δ̄ = Jᵀ δ̄ is their backward
                d_bar = layer.backward(d_bar, need_dx=True, need_dparams=False)

    def _dense(self, i: int, layer: Dense, d_bar: Array, tangent: bool) -> Array | None:
        """``∂/∂W += δ̄ᵀ δ_out`` (through W/σ for SpectralDense); returns ``δ̄ W`` when ``tangent``."""
        ops, dy = self.ops, self.seeds[i]
        shape = (layer.n_in, layer.n_out)
        g = ops.matmul(d_bar.T, dy, out=self.work.get(f"dW{i}", shape, dy.dtype))
        weight = layer.weight if isinstance(layer, SpectralDense) else layer.params["W"]
        if isinstance(layer, SpectralDense):
            layer.add_weight_gradient(g)
        else:
            layer.grads["W"] += g
        if not tangent:
            return None
        return ops.matmul(d_bar, weight, out=self.work.get(f"tangent{i}", (d_bar.shape[0], layer.n_out), dy.dtype))


    def _convolution(self, i: int, layer: Conv2d | ConvTranspose2d, d_bar: Array, tangent: bool) -> Array | None:
        """``∂/∂W += im2col(δ̄)ᵀ δ_out`` (Conv2d) or ``im2col(δ_out)ᵀ δ̄`` (ConvTranspose2d), through W/σ for
        SpectralConv2d; returns the layer's forward of ``δ̄`` without bias when ``tangent``."""
        g = layer.backward_weight_gradient(d_bar, self.seeds[i])
        if isinstance(layer, SpectralNorm):
            layer.add_weight_gradient(g)
        else:
            layer.grads["W"] += g
        return layer.linear(d_bar) if tangent else None


def _filled(xp: Any, a: Array) -> Array:
    a[...] = 1
    return a
