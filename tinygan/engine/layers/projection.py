"""The projection discriminator's last layer: a logit that also measures how well features fit a class.

Miyato & Koyama (2018) condition D on the class y by adding an inner product to its logit:

    a = h·w + b + ⟨E[y], h⟩

with h = φ(x) the features of D's last hidden layer and E a learned table of one row per class.
With packing (PacGAN) a group holds ``pack`` samples with their own classes, and the class term
becomes ⟨Σᵢ E[yᵢ], h⟩ = ⟨C E, h⟩ with C the group's class counts (one row per group, one column
per class). Writing the table lookup as the product C·E makes its backward a matrix product too,
``dE = Cᵀ (da ⊙ h)`` -- the scatter-add of each row's gradient into its class's row of E, with no
scatter operation the array API lacks.

The logit is linear in h, ``a = h·(w + (C E)ₙ) + b``, so its input gradient ``dh = da (w + (C E)ₙ)``
depends on w and E linearly: a gradient penalty's second-order backward
(:mod:`tinygan.engine.double_backward`) adds ``∂⟨δ̄, dh⟩/∂(w, E)``, which is this layer's own weight
gradients with ``δ̄`` in place of h (:meth:`ProjectionHead.add_weight_gradients`); b gets none.
"""

from __future__ import annotations

import math

from ...backend import Array
from .base import Layer


class ProjectionHead(Layer):
    """``a = h·w + b + ⟨C E, h⟩`` for features ``h: (N, n_in)`` and class counts ``C: (N, n_classes)``.

    Set the classes with :meth:`set_labels` before ``forward``: ``labels`` of shape ``(N,)`` or
    ``(N, pack)`` (integer classes in ``[0, n_classes)``). Backward:
    ``dw = hᵀ da``, ``db = Σ da``, ``dE = Cᵀ (da ⊙ h)``, ``dh = da wᵀ + da ⊙ (C E)``.
    """

    writes_first = True

    def __init__(self, n_in: int, n_classes: int) -> None:
        self.n_in, self.n_classes = n_in, n_classes

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"W": (self.n_in, 1), "b": (1,), "E": (self.n_classes, self.n_in)}

    def init_params(self, params: dict[str, Array]) -> None:
        for name, fan in (("W", self.n_in + 1), ("E", self.n_in + self.n_classes)):
            p = params[name]
            p[...] = self.rng.normal(p.shape, p.dtype)
            p *= math.sqrt(2.0 / fan)  # Glorot: a logit layer
        params["b"][...] = 0

    def set_labels(self, labels: Array) -> None:
        """The classes of the next forward's rows: ``(N,)``, or ``(N, pack)`` for packed groups."""
        xp = self.xp
        grouped = labels if labels.ndim == 2 else xp.reshape(labels, (labels.shape[0], 1))
        hits = grouped[:, :, None] == xp.arange(self.n_classes)[None, None, :]
        self.counts = xp.sum(xp.astype(hits, self.params["E"].dtype), axis=1)  # C: (N, n_classes)

    def forward(self, h: Array) -> Array:
        xp, ops = self.xp, self.ops
        self.h = h
        self.class_vectors = ops.matmul(self.counts, self.params["E"])  # C E: each row's Σᵢ E[yᵢ]
        a = ops.matmul(h, self.params["W"])
        a += self.params["b"]
        a += xp.sum(self.class_vectors * h, axis=1, keepdims=True)
        return a

    def backward(self, da: Array, need_dx: bool = True, need_dparams: bool = True) -> Array | None:
        ops = self.ops
        if need_dparams:
            self.add_weight_gradients(self.h, da)
            self.add_gradient("b", lambda out: ops.sum(da, axis=0, out=out))
        if not need_dx:
            return None
        dh = ops.matmul(da, self.params["W"].T)
        dh += da * self.class_vectors
        return dh

    def add_weight_gradients(self, h: Array, da: Array) -> None:
        """``dw += hᵀ da``, ``dE += Cᵀ (da ⊙ h)`` for the classes of the latest :meth:`set_labels`."""
        ops = self.ops
        self.add_gradient("W", lambda out: ops.matmul(h.T, da, out=out))
        self.add_gradient("E", lambda out: ops.matmul(self.counts.T, da * h, out=out))
