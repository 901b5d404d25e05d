"""Averaged weights: a copy of a network whose weights follow the moving average of another's.

Sampling from an exponential moving average of the generator's weights (Yazıcı et al., 2019)
averages out the oscillation of adversarial training. After step ``t``::

    avg ← avg + w·(θₜ − avg),   w = (1 − d) / (1 − dᵗ)

the bias-corrected average ``Σᵢ dᵗ⁻ⁱ θᵢ / Σᵢ dᵗ⁻ⁱ``, as Adam corrects its moments: w = 1 at the
first step, then w → 1 − d. A plain ``avg += (1 − d)(θ − avg)`` started at θ₀ would keep dᵗ of
its mass on the initial weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import Array, Backend, Ops, kernels_for, to_numpy
from ..backend.pool import block_pool, block_scratch
from ..engine.layers import BatchNorm, clone_layer
from ..engine.network import Sequential

STANDING_STAT_BATCHES, STANDING_STAT_BATCH = 20, 500


class AveragedNetwork:
    """The moving average of ``source``'s weights with decay ``decay``, in a network of its own.

    ``update(steps_done)`` folds in the source's current weights (``steps_done`` is a 0-d device
    array, so the weight is computed on the device). :meth:`network` returns the averaged
    network with BatchNorm statistics measured on itself.
    """

    def __init__(self, source: Sequential, decay: float, backend: Backend, dtype: str, seed: int) -> None:
        self.source, self.decay, self.backend, self.seed = source, decay, backend, seed
        # Its own generator for the initial draws, which the copy below overwrites: the source's
        # random stream stays as it would be without averaging.
        layers = [clone_layer(layer) for layer in source.layers]
        self.net = Sequential(layers, backend, dtype, rng=backend.rng(seed))
        self.net.params[...] = source.params
        self.ops = Ops(backend.xp)
        self._stats_step: int | None = None  # the step at which the BatchNorm statistics were measured

    @property
    def params(self) -> Array:
        return self.net.params

    def update(self, steps_done: Array) -> None:
        """``avg += w·(θ − avg)``, ``w`` from the device step count.

        Block by block on every core, through a small scratch buffer per thread, where the
        namespace takes ``out=`` (same bits as one pass).
        """
        xp, d = self.backend.xp, self.decay
        kernels = kernels_for(xp)
        if kernels is not None:  # the same arithmetic in one GPU kernel
            kernels.ema(self.source.params, d, steps_done, self.net.params)
            return
        weight = xp.astype(xp.asarray((1.0 - d) / (1.0 - d**steps_done)), self.net.params.dtype)
        if not self.ops.native:  # a namespace without out=: whole arrays
            self._lerp(self.source.params, self.net.params, None, weight)
        else:
            block_pool().run(lambda lo, hi: self._lerp_block(lo, hi, weight), self.net.params.shape[0])

    def _lerp_block(self, lo: int, hi: int, weight: Array) -> None:
        avg = self.net.params[lo:hi]
        self._lerp(self.source.params[lo:hi], avg, block_scratch(avg), weight)

    def _lerp(self, source: Array, avg: Array, diff: Array | None, weight: Array) -> None:
        diff = self.ops.subtract(source, avg, out=diff)
        diff *= weight
        avg += diff

    def network(self, step: int, latent_dim: int, dtype: Any, inputs: Any = None) -> Sequential:
        """The averaged network, its BatchNorm statistics measured on itself as of ``step``.

        The source's running statistics describe its live weights, not their average, so the
        averaged network gets its own ("standing statistics", Brock et al., 2019): the mean over a
        few batches of its own activations, from a fixed seed so that sampling is repeatable.
        ``inputs`` maps a batch of latents to the network's input (a conditional G's adds the classes).
        """
        bns = [layer for layer in self.net.layers if isinstance(layer, BatchNorm)]
        if bns and self._stats_step != step:
            rng = self.backend.rng(self.seed)
            momenta = [bn.momentum for bn in bns]
            self.net.train()
            for i in range(STANDING_STAT_BATCHES):
                for bn in bns:
                    bn.momentum = 1.0 / (i + 1)  # running value = plain mean of the batches so far
                z = rng.normal((STANDING_STAT_BATCH, latent_dim), dtype)
                self.net.forward(z if inputs is None else inputs(z))
            for bn, m in zip(bns, momenta, strict=True):
                bn.momentum = m
            self._stats_step = step
        return self.net

    def state_dict(self) -> dict[str, np.ndarray]:
        """The averaged weights (its BatchNorm statistics are derived from them, so not saved)."""
        return {"params": to_numpy(self.net.params).copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        params = state["params"]
        if tuple(params.shape) != tuple(self.net.params.shape):
            raise ValueError(f"'G_avg/params' has shape {params.shape}, expected {tuple(self.net.params.shape)}")
        self.net.params[...] = self.backend.asarray(params, dtype=self.net.params.dtype)
        self._stats_step = None
