"""Losses on logits, each returning ``(loss, dL/dlogits)``.

Losses take raw logits rather than probabilities so the log never meets a
0 or 1 rounded from a saturated sigmoid: every log is computed in a form that
is finite for any finite logit. The loss is returned as a 0-d array on the
device, so computing it never forces a GPU to synchronise with the host.
"""

from __future__ import annotations

from ..backend import Array, kernels_for, namespace_of
from .layers import sigmoid


def bce_with_logits(logits: Array, target: float | Array) -> tuple[Array, Array]:
    """Binary cross-entropy of ``σ(a)`` against ``y``, averaged over all elements of ``a``.

    Per element, ``ℓ = −y log σ(a) − (1 − y) log(1 − σ(a))``. Using
    ``log σ(a) = −softplus(−a)`` and ``softplus(a) = max(a, 0) + log1p(e^{−|a|})``:

        ℓ = max(a, 0) − a·y + log1p(exp(−|a|))

    where ``exp`` only ever sees non-positive numbers. The gradient is
    ``∂ℓ/∂a = σ(a) − y``, divided by the element count ``N`` for the mean.
    ``target`` is a scalar (a label for the whole batch, e.g. 0.9 for one-sided
    label smoothing) or an array shaped like ``logits``.
    """
    xp = namespace_of(logits)
    n = logits.size if isinstance(logits.size, int) else int(logits.size)
    kernels = kernels_for(xp)
    if kernels is not None:  # the same formulas in one GPU kernel (each term already divided by N)
        terms, grad = kernels.bce(logits, target, n)
        return xp.sum(terms), grad
    per_element = xp.maximum(logits, 0.0) - logits * target + xp.log1p(xp.exp(-xp.abs(logits)))
    loss = xp.sum(per_element) / n
    grad = (sigmoid(logits, xp) - target) / n
    return loss, grad


def softmax_cross_entropy(logits: Array, labels: Array) -> tuple[Array, Array]:
    """Mean cross-entropy of ``softmax(a)`` against integer class ``labels: (N,)``.

    With ``p = softmax(a)`` computed after subtracting the row maximum (so no
    exp overflows), ``ℓ = logsumexp(a) − a[label]`` and ``∂ℓ/∂a = (p − onehot(label)) / N``.
    """
    xp = namespace_of(logits)
    n, k = logits.shape
    shifted = logits - xp.max(logits, axis=1, keepdims=True)
    log_z = xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
    log_p = shifted - log_z
    onehot = xp.astype(xp.arange(k)[None, :] == labels[:, None], logits.dtype)
    loss = -xp.sum(log_p * onehot) / n
    grad = (xp.exp(log_p) - onehot) / n
    return loss, grad
