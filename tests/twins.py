"""The one check of a PyTorch twin's steps: from the same inputs, the same metrics as tinygan's."""

from __future__ import annotations

import numpy as np
import pytest


def assert_same_steps(model, peer, x_shape, noise_shape, keys, low=-1.0, steps=3) -> None:
    """``steps`` float64 training steps of ``model`` and its twin ``peer`` on the same data (uniform in
    [``low``, 1)) and noise (z or ε): every metric of ``keys`` agrees to 1e-9."""
    import torch

    rng = np.random.default_rng(0)
    for _ in range(steps):
        x, noise = rng.uniform(low, 1.0, x_shape), rng.standard_normal(noise_shape)
        ours = model.train_step(x, noise)
        theirs = peer.train_step(torch.from_numpy(x), torch.from_numpy(noise))
        for k in keys:
            assert float(theirs[k]) == pytest.approx(float(ours[k]), rel=1e-9), k
