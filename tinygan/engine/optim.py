"""Optimizers over a network's flat parameter buffer, updating it in place.

An optimizer is given the two flat arrays of a :class:`~tinygan.engine.network.Sequential`
(``params`` and ``grads``) and applies its rule to the whole buffer at once.
It never zeroes gradients; the training step does that before each backward.
"""

from __future__ import annotations

import numpy as np

from ..backend import Array, Ops, Workspace, kernels_for, namespace_of, to_numpy
from ..backend.pool import block_pool, block_scratch


class SGD:
    """Stochastic gradient descent with (heavy-ball) momentum.

    ``v ← μ v + g``; ``θ ← θ − lr · v`` (``μ = 0`` is plain SGD).
    """

    def __init__(self, params: Array, grads: Array, lr: float = 0.01, momentum: float = 0.0) -> None:
        xp = namespace_of(params)
        self.params, self.grads, self.lr, self.momentum = params, grads, lr, momentum
        self.velocity = xp.zeros_like(params)
        self.ops = Ops(xp)
        self.scratch = Workspace(xp).get("scratch", params.shape, params.dtype)  # None off NumPy/CuPy

    def step(self, lr: float | Array | None = None) -> None:
        """Apply one update from the current gradients (at ``lr`` if given, else ``self.lr``)."""
        lr = self.lr if lr is None else lr
        if self.momentum:
            self.velocity *= self.momentum
            self.velocity += self.grads
            self.params -= self.ops.multiply(self.velocity, lr, out=self.scratch)
        else:
            self.params -= self.ops.multiply(self.grads, lr, out=self.scratch)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"velocity": to_numpy(self.velocity).copy()}

    def load_state_dict(self, state: dict) -> None:
        self.velocity[...] = _like(self.velocity, state["velocity"])


class Adam:
    """Adam (Kingma & Ba, 2015) with the paper's bias correction.

    With gradient ``g`` at step ``t = 1, 2, …``::

        m ← β₁ m + (1 − β₁) g            v ← β₂ v + (1 − β₂) g²
        m̂ = m / (1 − β₁ᵗ)                v̂ = v / (1 − β₂ᵗ)
        θ ← θ − lr · m̂ / (√v̂ + ε)

    The correction divides by ``1 − βᵗ`` (powers of β), which undoes the bias
    of ``m`` and ``v`` towards their zero start in the first steps.

    The step counter ``t`` is a 0-d array on the device and the step size is computed there from
    it, so a step passes no value that changes from step to step to any kernel: the same calls,
    recorded once as a CUDA graph, replay later steps exactly. The update runs over the flat
    buffers block by block with a small scratch buffer per thread (no temporaries) on NumPy, and as
    a single fused kernel on CuPy.
    """

    def __init__(
        self,
        params: Array,
        grads: Array,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        eps: float = 1e-8,
    ) -> None:
        xp = namespace_of(params)
        self.params, self.grads = params, grads
        self.lr, self.betas, self.eps = lr, betas, eps
        self.m = xp.zeros_like(params)
        self.v = xp.zeros_like(params)
        self.t = xp.zeros((), dtype=xp.float64)  # steps taken, counted on the device
        self.xp = xp
        self.ops = Ops(xp)
        self.kernels = kernels_for(xp)
        if self.kernels is not None:  # the step size and correction, computed by a kernel into these
            self._factors = (xp.zeros((), dtype=params.dtype), xp.zeros((), dtype=params.dtype))

    @property
    def steps(self) -> int:
        """Steps taken so far (reads the device counter: not for the hot path)."""
        return int(to_numpy(self.t))

    def step(self, lr: float | Array | None = None) -> None:
        """Apply one update from the current gradients (at ``lr`` if given, else ``self.lr``).

        ``lr`` may be a 0-d float64 array, so that a schedule can run on the device too.
        """
        b1, b2 = self.betas
        xp = self.xp
        lr = self.lr if lr is None else lr
        if self.kernels is not None:  # the same arithmetic in two GPU kernels
            step_size, c2 = self._factors
            self.kernels.adam_scalars(lr, b1, b2, self.t, step_size, c2)
            self.kernels.adam(self.grads, b1, 1 - b1, b2, 1 - b2, step_size, c2, self.eps, self.params, self.m, self.v)
            return
        self.t += 1
        # θ -= lr/(1-β₁ᵗ) · m / (√v / √(1-β₂ᵗ) + ε): the paper's m̂/(√v̂+ε) with no extra arrays.
        # Both factors are worked out in float64 and rounded once to the parameters' dtype.
        step_size = xp.astype(xp.asarray(lr / (1 - b1**self.t)), self.params.dtype)
        c2 = xp.astype(xp.asarray(1 / xp.sqrt(1 - b2**self.t)), self.params.dtype)
        if not self.ops.native:  # a namespace without out=: whole arrays, new temporaries
            self._update(self.params, self.grads, self.m, self.v, None, step_size, c2)
        else:  # block by block, on every core: the same operations on each element, so the same bits
            block_pool().run(lambda lo, hi: self._update_block(lo, hi, step_size, c2), self.params.shape[0])

    def _update_block(self, lo: int, hi: int, step_size: Array, c2: Array) -> None:
        p = self.params[lo:hi]
        self._update(p, self.grads[lo:hi], self.m[lo:hi], self.v[lo:hi], block_scratch(p), step_size, c2)

    def _update(self, p: Array, g: Array, m: Array, v: Array, s: Array | None, step_size: Array, c2: Array) -> None:
        """The update on one stretch of the buffers; ``s`` is scratch space of the same size.

        The operations are the formulas above in the same order, so every path rounds the same way.
        """
        b1, b2 = self.betas
        ops = self.ops
        m *= b1
        m += ops.multiply(g, 1 - b1, out=s)
        v *= b2
        g2 = ops.multiply(g, g, out=s)
        g2 *= 1 - b2
        v += g2
        denom = ops.sqrt(v, out=s)
        denom *= c2
        denom += self.eps
        update = ops.divide(m, denom, out=denom)
        update *= step_size
        p -= update

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"m": to_numpy(self.m).copy(), "v": to_numpy(self.v).copy(), "t": np.asarray(self.steps)}

    def load_state_dict(self, state: dict) -> None:
        t = np.asarray(state["t"])
        if t.shape != () or t.dtype.kind not in "iu" or int(t) < 0:
            raise ValueError(f"optimizer step count must be a non-negative integer, got {t!r}")
        self.m[...] = _like(self.m, state["m"])
        self.v[...] = _like(self.v, state["v"])
        self.t[...] = int(t)


def _like(target: Array, value: np.ndarray) -> Array:
    if tuple(np.shape(value)) != tuple(target.shape):
        raise ValueError(f"optimizer state has shape {np.shape(value)}, expected {tuple(target.shape)}")
    return namespace_of(target).asarray(value, dtype=target.dtype)
