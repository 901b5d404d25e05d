"""Optimizers over a network's flat parameter buffer, updating it in place.

An optimizer is given the two flat arrays of a :class:`~tinygan.network.Sequential`
(``params`` and ``grads``) and applies its rule to the whole buffer at once.
It never zeroes gradients; the training step does that before each backward.
"""

from __future__ import annotations

import math

import numpy as np

from .backend import Array, namespace_of, to_numpy


class SGD:
    """Stochastic gradient descent with (heavy-ball) momentum.

    ``v ← μ v + g``; ``θ ← θ − lr · v`` (``μ = 0`` is plain SGD).
    """

    def __init__(self, params: Array, grads: Array, lr: float = 0.01, momentum: float = 0.0) -> None:
        self.params, self.grads, self.lr, self.momentum = params, grads, lr, momentum
        self.velocity = namespace_of(params).zeros_like(params)

    def step(self) -> None:
        """Apply one update from the current gradients."""
        if self.momentum:
            self.velocity *= self.momentum
            self.velocity += self.grads
            self.params -= self.lr * self.velocity
        else:
            self.params -= self.lr * self.grads

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
        self.t = 0

    def step(self) -> None:
        """Apply one update from the current gradients."""
        xp = namespace_of(self.params)
        b1, b2 = self.betas
        self.t += 1
        g = self.grads
        self.m *= b1
        self.m += (1 - b1) * g
        self.v *= b2
        self.v += (1 - b2) * (g * g)
        # θ -= lr/(1-β₁ᵗ) · m / (√v / √(1-β₂ᵗ) + ε): the paper's m̂/(√v̂+ε) with no extra arrays.
        step_size = self.lr / (1 - b1**self.t)
        denom = xp.sqrt(self.v) * (1 / math.sqrt(1 - b2**self.t)) + self.eps
        self.params -= step_size * (self.m / denom)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"m": to_numpy(self.m).copy(), "v": to_numpy(self.v).copy(), "t": np.asarray(self.t)}

    def load_state_dict(self, state: dict) -> None:
        self.m[...] = _like(self.m, state["m"])
        self.v[...] = _like(self.v, state["v"])
        self.t = int(state["t"])


def _like(target: Array, value: np.ndarray) -> Array:
    if tuple(np.shape(value)) != tuple(target.shape):
        raise ValueError(f"optimizer state has shape {np.shape(value)}, expected {tuple(target.shape)}")
    return namespace_of(target).asarray(value, dtype=target.dtype)
