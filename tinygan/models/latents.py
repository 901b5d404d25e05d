"""Latents: drawn on the host from a seed, walked between, and turned into samples a chunk at a time.

The latents come from one host stream drawn row by row, so the same seed gives the same latents on
every backend and for any chunk size, and memory holds one chunk of samples at a time: what
``sample``, ``eval``, the FD curve and the pictures of a run draw.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .classes import spread

SAMPLE_CHUNK = 2_500  # samples generated (and judged) at a time: memory does not grow with n


def latent_chunks(n: int, latent_dim: int, seed: int, chunk: int = SAMPLE_CHUNK) -> Iterator[np.ndarray]:
    """``n`` latent vectors from ``seed``, ``chunk`` rows at a time.

    One stream drawn row by row, so the chunks put together are the same for any ``chunk``, and the
    first ``k`` rows do not depend on ``n``.
    """
    rng = np.random.default_rng(seed)
    for start in range(0, n, chunk):
        yield rng.standard_normal((min(chunk, n - start), latent_dim)).astype(np.float32)


def seeded_latents(n: int, latent_dim: int, seed: int) -> np.ndarray:
    """``n`` latent vectors from ``seed`` in one array: :func:`latent_chunks` put together."""
    parts = list(latent_chunks(n, latent_dim, seed, max(n, 1)))
    return np.concatenate(parts) if parts else np.zeros((0, latent_dim), np.float32)


def slerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` points from each row of ``a`` to the same row of ``b`` along the great circle: ``(rows, steps, dim)``.

    Spherical interpolation ``sin((1−t)Ω)/sin Ω · a + sin(tΩ)/sin Ω · b`` (cos Ω = â·b̂) keeps the
    points at the norms Gaussian latents have; a straight line between two such latents passes
    through the low-norm middle that a generator never saw. Nearly parallel rows fall back to the line.
    """
    t = np.linspace(0.0, 1.0, steps)[None, :, None]
    a64, b64 = np.asarray(a, np.float64)[:, None, :], np.asarray(b, np.float64)[:, None, :]
    cos = np.sum(a64 * b64, axis=2, keepdims=True) / (
        np.linalg.norm(a64, axis=2, keepdims=True) * np.linalg.norm(b64, axis=2, keepdims=True) + 1e-12
    )
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    sin = np.sin(omega)
    straight = sin < 1e-6
    safe = np.where(straight, 1.0, sin)
    wa = np.where(straight, 1.0 - t, np.sin((1.0 - t) * omega) / safe)
    wb = np.where(straight, t, np.sin(t * omega) / safe)
    return (wa * a64 + wb * b64).astype(np.float32)


def sample_chunks(
    model: Any, n: int, seed: int = 0, chunk: int = SAMPLE_CHUNK, labels: np.ndarray | None = None
) -> Iterator[np.ndarray]:
    """``n`` samples from ``model`` (host float32, data units), ``chunk`` at a time, from seeded host latents.

    The latents are those ``tinygan sample --seed`` draws, so results do not depend on the backend.
    A conditional model's samples are of classes ``labels`` (``(n,)``; by default spread evenly over
    its classes, class by class).
    """
    k = model.config.n_classes
    labels = spread(n, range(k)) if labels is None and k else labels
    start = 0
    for z in latent_chunks(n, model.config.latent_dim, seed, chunk):
        some = None if labels is None else labels[start : start + len(z)]
        yield model.sample(len(z), z=z) if some is None else model.sample(len(z), z=z, labels=some)
        start += len(z)


def sample_model(model: Any, n: int, seed: int = 0, batch: int = SAMPLE_CHUNK) -> np.ndarray:
    """``n`` samples from ``model`` in one array: :func:`sample_chunks` put together."""
    parts = list(sample_chunks(model, n, seed, batch))
    return np.concatenate(parts) if parts else np.zeros((0, *model.config.data_shape), np.float32)
