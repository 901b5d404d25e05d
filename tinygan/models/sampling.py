"""Samples a chunk at a time, from latents seeded on the host: what ``sample``, ``eval`` and the FD curve draw.

The latents come from one host stream drawn row by row, so the same seed gives the same latents on
every backend and for any chunk size, and memory holds one chunk of samples at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .classes import spread

SAMPLE_CHUNK = 2_500  # samples generated (and judged) at a time: memory does not grow with n


def latent_chunks(n: int, latent_dim: int, seed: int, chunk: int = SAMPLE_CHUNK) -> Iterator[np.ndarray]:
    """The latents of :func:`tinygan.models.gan.seeded_latents` ``(n, latent_dim, seed)``, ``chunk`` rows at a time.

    One stream drawn row by row, so the chunks put together equal the single draw, for any ``chunk``.
    """
    rng = np.random.default_rng(seed)
    for start in range(0, n, chunk):
        yield rng.standard_normal((min(chunk, n - start), latent_dim)).astype(np.float32)


def sample_chunks(
    gan: Any, n: int, seed: int = 0, chunk: int = SAMPLE_CHUNK, labels: np.ndarray | None = None
) -> Iterator[np.ndarray]:
    """``n`` samples from ``gan`` (host float32, data units), ``chunk`` at a time, from seeded host latents.

    The latents are those ``tinygan sample --seed`` draws, so results do not depend on the backend.
    A conditional model's samples are of classes ``labels`` (``(n,)``; by default spread evenly over
    its classes, class by class).
    """
    k = getattr(gan.config, "n_classes", 0)
    labels = spread(n, range(k)) if labels is None and k else labels
    start = 0
    for z in latent_chunks(n, gan.config.latent_dim, seed, chunk):
        some = None if labels is None else labels[start : start + len(z)]
        yield gan.sample(len(z), z=z) if some is None else gan.sample(len(z), z=z, labels=some)
        start += len(z)


def sample_gan(gan: Any, n: int, seed: int = 0, batch: int = SAMPLE_CHUNK) -> np.ndarray:
    """``n`` samples from ``gan`` in one array: :func:`sample_chunks` put together."""
    parts = list(sample_chunks(gan, n, seed, batch))
    return np.concatenate(parts) if parts else np.zeros((0, *gan.config.data_shape), np.float32)
