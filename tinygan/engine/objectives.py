"""The losses of the game: what D and G minimise, as functions of D's outputs, and the gradient penalties.

D outputs one number ``a`` per (packed) sample. Every function returns ``(loss, ∂loss/∂a)``, the
loss a 0-d device array averaged over the ``N`` outputs (so each gradient carries a ``1/N``):

======================  ===============================================  =========================
objective               D minimises (``a_r`` on data, ``a_f`` on G(z))   G minimises
======================  ===============================================  =========================
``bce``                 ``BCE(a_r, y) + BCE(a_f, 0)``                    ``BCE(a_f, 1)``
``hinge``               ``mean relu(1 − a_r) + mean relu(1 + a_f)``      ``−mean a_f``
``lsgan``               ``½ mean (a_r − 1)² + ½ mean a_f²``              ``½ mean (a_f − 1)²``
``wgan``, ``wgan-gp``   ``mean a_f − mean a_r``                          ``−mean a_f``
======================  ===============================================  =========================

``bce`` is Goodfellow et al.'s game with the non-saturating generator loss (``a`` a logit,
``y`` the real label); hinge is the loss of Lim & Ye (2017) and Miyato et al. (2018); least
squares is Mao et al.'s (2017) with targets 0 and 1; the Wasserstein critic (Arjovsky et al.,
2017) estimates ``W₁`` only if D is 1-Lipschitz, which ``wgan`` enforces by clipping D's weights
and ``wgan-gp`` (Gulrajani et al., 2017) by a gradient penalty. Gradients per element:

    hinge:  ∂/∂a_r = −[a_r < 1],  ∂/∂a_f = [a_f > −1]      (0 on the kink)
    lsgan:  ∂/∂a_r = a_r − 1,     ∂/∂a_f = a_f,      G: a_f − 1
    wgan:   ∂/∂a_r = −1,          ∂/∂a_f = 1,        G: −1

Penalties are functions of ``g``, the rows of ``∇ₓD`` (one per sample), with ``∂P/∂g`` for the
second-order backward of :mod:`tinygan.engine.double_backward`:

    R1 (Mescheder et al., 2018), on data:      P = γ/2 · mean ‖gₙ‖²,           ∂P/∂gₙ = γ gₙ / N
    WGAN-GP, on interpolates x̂:               P = λ · mean (‖gₙ‖ − 1)²,       ∂P/∂gₙ = 2λ (‖gₙ‖ − 1) gₙ / (‖gₙ‖ N)

where WGAN-GP's norm is ``‖g‖ = √(Σ g² + ε)``, ε = 1e-12, so a zero gradient cannot divide by zero.
"""

from __future__ import annotations

from collections.abc import Callable

from ..backend import Array, namespace_of
from .logit_losses import bce_with_logits

LOSSES = ("bce", "hinge", "lsgan", "wgan", "wgan-gp")
GP_EPS = 1e-12

Loss = Callable[[Array], tuple[Array, Array]]


def _n(a: Array) -> int:
    return a.size if isinstance(a.size, int) else int(a.size)


def hinge(a: Array, sign: float) -> tuple[Array, Array]:
    """``mean relu(1 + sign·a)``: ``sign = −1`` for data, ``+1`` for generated samples."""
    xp, n = namespace_of(a), _n(a)
    margin = 1.0 + sign * a
    loss = xp.sum(xp.maximum(margin, 0.0)) / n
    return loss, xp.astype(margin > 0, a.dtype) * (sign / n)


def squared(a: Array, target: float) -> tuple[Array, Array]:
    """``½ mean (a − target)²``."""
    xp, n = namespace_of(a), _n(a)
    diff = a - target
    return 0.5 * xp.sum(diff * diff) / n, diff / n


def linear(a: Array, sign: float) -> tuple[Array, Array]:
    """``sign · mean a``."""
    xp, n = namespace_of(a), _n(a)
    return sign * xp.sum(a) / n, xp.full(a.shape, sign / n, dtype=a.dtype)


def d_real_loss(name: str, real_label: float = 1.0) -> Loss:
    """D's loss on data outputs for objective ``name`` (``real_label`` is bce's target)."""
    return {
        "bce": lambda a: bce_with_logits(a, real_label),
        "hinge": lambda a: hinge(a, -1.0),
        "lsgan": lambda a: squared(a, 1.0),
    }.get(name, lambda a: linear(a, -1.0))


def d_fake_loss(name: str) -> Loss:
    """D's loss on generated samples' outputs for objective ``name``."""
    return {
        "bce": lambda a: bce_with_logits(a, 0.0),
        "hinge": lambda a: hinge(a, 1.0),
        "lsgan": lambda a: squared(a, 0.0),
    }.get(name, lambda a: linear(a, 1.0))


def g_loss(name: str) -> Loss:
    """G's loss on D's outputs for its samples, for objective ``name``."""
    return {
        "bce": lambda a: bce_with_logits(a, 1.0),
        "lsgan": lambda a: squared(a, 1.0),
    }.get(name, lambda a: linear(a, -1.0))


def r1_penalty(g: Array, gamma: float) -> tuple[Array, Array]:
    """``γ/2 · mean ‖gₙ‖²`` over the rows of ``g``, and its gradient ``γ g / N``."""
    xp, n = namespace_of(g), g.shape[0]
    return (0.5 * gamma / n) * xp.sum(g * g), g * (gamma / n)


def gp_penalty(g: Array, weight: float) -> tuple[Array, Array]:
    """``λ · mean (‖gₙ‖ − 1)²`` over the rows of ``g``, and its gradient."""
    xp, n = namespace_of(g), g.shape[0]
    norms = xp.sqrt(xp.sum(g * g, axis=1, keepdims=True) + GP_EPS)
    excess = norms - 1.0
    return (weight / n) * xp.sum(excess * excess), g * (excess / norms) * (2.0 * weight / n)
