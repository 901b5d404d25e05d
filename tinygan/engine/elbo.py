"""The two pieces of math a VAE adds to the engine: the reparameterised Gaussian latent with its KL
term, and reconstruction log-likelihoods in nats per sample.

Kingma & Welling (2014). An encoder maps ``x`` to ``h = [μ, ℓ]`` with ``ℓ = log σ²``; the latent is
drawn as ``z = μ + σ·ε``, ``σ = exp(½ℓ)``, ``ε ~ N(0, I)``, so that ``z`` is a differentiable
function of the encoder's output and the noise is an input like any other. The loss is the
negative evidence lower bound, per sample ``−ELBO = −log p(x|z) + KL(q(z|x) ‖ N(0, I))``, averaged
over the batch.

Backward, per latent dimension (``dz = ∂L/∂z`` from the decoder, ``N`` the batch size):

* reparameterisation: ``∂z/∂μ = 1`` and ``∂z/∂ℓ = ½σε`` (from ``σ = e^{ℓ/2}``), so
  ``dμ = dz`` and ``dℓ = ½·dz·σ·ε``;
* KL, closed form ``½(μ² + e^ℓ − 1 − ℓ)`` per dimension: ``∂/∂μ = μ``, ``∂/∂ℓ = ½(e^ℓ − 1)``,
  each divided by ``N`` for the batch mean.

``σ = exp(½ℓ)``, not ``exp(ℓ)``: the encoder predicts the log of the *variance*, and the KL above
(which uses ``e^ℓ`` as the variance) is only the KL of the ``z`` actually drawn if the two agree.
Intermediates live in reused buffers (:class:`~tinygan.backend.Workspace`) on NumPy and CuPy.
"""

from __future__ import annotations

import math
from typing import Any

from ..backend import Array, Ops, Workspace, kernels_for, namespace_of
from ..backend.pool import block_pool

LOG_2PI = math.log(2.0 * math.pi)


def _into(ops: Ops, name: str, *args: Any, out: Array | None = None) -> Array:
    """``xp.<name>(*args)``, written into ``out`` where the namespace takes ``out=`` (see :class:`Ops`)."""
    fn = getattr(ops.xp, name)
    return fn(*args, out=out) if ops.native and out is not None else fn(*args)


class GaussianLatent:
    """``q(z|x) = N(μ, diag σ²)`` from an encoder output ``h = [μ, log σ²]`` of shape ``(N, 2k)``.

    :meth:`forward` draws ``z = μ + σ·ε`` for given noise ``ε: (N, k)`` and computes the KL term;
    :meth:`backward` turns ``dz`` into ``dh``, adding the KL term's own gradient. Like a layer, it
    keeps only its latest forward's caches, in buffers reused from call to call.
    """

    def __init__(self, xp: Any, latent_dim: int) -> None:
        self.xp, self.k = xp, latent_dim
        self.ops = Ops(xp)
        self.work = Workspace(xp)

    def split(self, h: Array) -> tuple[Array, Array]:
        """(μ, log σ²) as views of the encoder output."""
        return h[:, : self.k], h[:, self.k :]

    def forward(self, h: Array, eps: Array) -> tuple[Array, Array]:
        """``(z, kl)``: ``z = μ + exp(½ log σ²)·ε`` of shape ``(N, k)``, and the batch mean of
        ``KL(q ‖ N(0, I)) = ½ Σ_k (μ² + σ² − 1 − log σ²)`` as a 0-d array."""
        ops, w, n = self.ops, self.work, h.shape[0]
        mu, logvar = self.split(h)
        shape = (n, self.k)
        sigma = ops.multiply(logvar, 0.5, out=w.get("sigma", shape, h.dtype))
        sigma = _into(ops, "exp", sigma, out=sigma)
        z = ops.multiply(sigma, eps, out=w.get("z", shape, h.dtype))
        z += mu
        self.mu, self.sigma, self.eps = mu, sigma, eps
        # ½ Σ (μ² + σ² − 1 − ℓ) / N, with σ² = σ·σ (the same σ that drew z)
        terms = ops.multiply(mu, mu, out=w.get("kl", shape, h.dtype))
        terms += ops.multiply(sigma, sigma, out=w.get("sigma2", shape, h.dtype))
        terms -= logvar
        kl = (self.xp.sum(terms) - n * self.k) * (0.5 / n)
        return z, kl

    def backward(self, dz: Array) -> Array:
        """``dh = [dμ, dℓ]``: ``dμ = dz + μ/N``, ``dℓ = ½·dz·σ·ε + ½(σ² − 1)/N`` (reparameterisation + KL)."""
        xp, ops, w, n = self.xp, self.ops, self.work, dz.shape[0]
        inv_n = 1.0 / n
        dh = w.get("dh", (n, 2 * self.k), dz.dtype)
        dmu = ops.multiply(self.mu, inv_n, out=None if dh is None else dh[:, : self.k])
        dmu += dz
        dl = ops.multiply(dz, self.sigma, out=None if dh is None else dh[:, self.k :])
        dl *= self.eps
        sigma2 = w.get("sigma2", dl.shape, dl.dtype)
        sigma2 = ops.multiply(self.sigma, self.sigma, out=sigma2)
        sigma2 -= 1.0
        sigma2 *= inv_n
        dl += sigma2
        dl *= 0.5
        return dh if dh is not None else xp.concat([dmu, dl], axis=1)


def bernoulli_nll(logits: Array, x: Array, work: Workspace | None = None) -> tuple[Array, Array]:
    """``−log p(x|z)`` for Bernoulli pixels with means ``σ(a)``: summed over a sample's values, averaged
    over the batch (nats per sample); returns ``(loss, dL/dlogits)``.

    Per value the stable binary cross-entropy on logits ``max(a, 0) − a·x + log1p(exp(−|a|))``
    (see :func:`tinygan.engine.logit_losses.bce_with_logits`), whose gradient is ``σ(a) − x``, divided by ``N``
    for the batch mean. ``x`` in [0, 1]; for grey levels between 0 and 1 this is the usual
    "continuous Bernoulli without its normaliser", the loss of most published image VAEs.
    ``work`` keeps the intermediates from call to call.
    """
    xp = namespace_of(logits)
    ops, n = Ops(xp), logits.shape[0]
    work = work or Workspace(xp)
    shape, dtype = logits.shape, logits.dtype
    t, u, grad = (work.get(name, shape, dtype) for name in ("t", "u", "grad"))  # None without out=
    if ops.native and kernels_for(xp) is None:  # NumPy: row blocks on every core, the same bits (elementwise)
        block_pool().run(lambda lo, hi: _bernoulli_terms(ops, logits[lo:hi], x[lo:hi], t[lo:hi], u[lo:hi],
                                                         grad[lo:hi], n), n, shape[1])
    else:  # CuPy (each pass one launch on the step's stream), or a namespace without out=
        t, grad = _bernoulli_terms(ops, logits, x, t, u, grad, n)
    return xp.sum(t) / n, grad  # the sum over all of t, whatever the blocks


def _bernoulli_terms(ops: Ops, logits: Array, x: Array, t: Array | None, u: Array | None, grad: Array | None,
                     n: int) -> tuple[Array, Array]:
    """Per value ``max(a, 0) − a·x + log1p(exp(−|a|))`` into ``t``, and ``(σ(a) − x)/n`` into ``grad``."""
    t = _into(ops, "abs", logits, out=t)
    t = _into(ops, "negative", t, out=t)
    t = _into(ops, "exp", t, out=t)
    t = _into(ops, "log1p", t, out=t)
    t += _into(ops, "maximum", logits, 0.0, out=u)
    t -= ops.multiply(logits, x, out=u)
    grad = ops.multiply(logits, 0.5, out=grad)  # σ(a) = ½ tanh(a/2) + ½
    grad = _into(ops, "tanh", grad, out=grad)
    grad *= 0.5
    grad += 0.5
    grad -= x
    grad *= 1.0 / n
    return t, grad


def gaussian_nll(mean: Array, x: Array, std: float) -> tuple[Array, Array]:
    """``−log N(x; mean, std²·I)`` summed over a sample's values, averaged over the batch; ``(loss, grad)``.

    Per sample ``‖x − m‖²/(2 std²) + D·log std + (D/2)·log 2π``; the gradient with respect to the
    mean is ``(m − x)/std²``, divided by ``N``. For 2-D points, with a fixed ``std``.
    """
    xp = namespace_of(mean)
    n, d = mean.shape
    diff = mean - x
    constant = d * (math.log(std) + 0.5 * LOG_2PI)
    loss = xp.sum(diff * diff) / (2.0 * std * std * n) + constant
    return loss, diff * (1.0 / (std * std * n))
