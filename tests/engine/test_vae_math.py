"""The math a VAE adds: the reparameterisation and the KL term (forward and backward), the
reconstruction losses, and the whole −ELBO's gradient with respect to every parameter, checked
in float64 against central differences with ε held fixed, on every backend. Each check is shown
to fail on a deliberately wrong version."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck import GRAD_SETTINGS, assert_close_grad, numerical_grad, random_array
from hypothesis import given
from hypothesis import strategies as st

from tinygan import VAE, VAEConfig
from tinygan.backend import to_numpy
from tinygan.engine.elbo import GaussianLatent, bernoulli_nll, gaussian_nll

SEEDS = st.integers(0, 2**31)


def _latent_loss(backend, latent, h, eps, r):
    """``L = Σ z·R + KL``, so that ``dz = R`` and ``backward`` must add the KL term's own gradient."""
    z, kl = latent.forward(backend.asarray(h), backend.asarray(eps))
    return float(np.sum(to_numpy(z) * r) + float(to_numpy(kl)))


def check_latent(backend, latent_class, seed, n, k, tol=1e-6):
    latent = latent_class(backend.xp, k)
    h, eps, r = random_array(seed, (n, 2 * k)), random_array(seed + 1, (n, k)), random_array(seed + 2, (n, k))
    latent.forward(backend.asarray(h), backend.asarray(eps))
    dh = to_numpy(latent.backward(backend.asarray(r))).copy()
    numeric = numerical_grad(lambda hh: _latent_loss(backend, latent, hh, eps, r), h)
    assert_close_grad(dh, numeric, "reparameterisation + KL gradient", tol)


@GRAD_SETTINGS
@given(seed=SEEDS, n=st.integers(1, 6), k=st.integers(1, 4))
def test_reparameterisation_and_kl_gradients(backend, seed, n, k):
    check_latent(backend, GaussianLatent, seed, n, k)


class _HalfMissing(GaussianLatent):
    """The reparameterisation's backward without the ½ of ∂σ/∂ℓ = ½σ."""

    def backward(self, dz):
        dh = self.xp.asarray(to_numpy(super().backward(dz)).copy())
        extra = to_numpy(dz) * to_numpy(self.sigma) * to_numpy(self.eps) * 0.5
        return self.xp.asarray(to_numpy(dh) + np.concatenate([np.zeros_like(extra), extra], axis=1))


class _KLGradWrong(GaussianLatent):
    """The KL term's ∂/∂ℓ written as ½e^ℓ, forgetting the −½ from −ℓ."""

    def backward(self, dz):
        dh = to_numpy(super().backward(dz)).copy()
        dh[:, self.k :] += 0.5 / dz.shape[0]
        return self.xp.asarray(dh)


@pytest.mark.parametrize("wrong", [_HalfMissing, _KLGradWrong], ids=["reparam-missing-half", "kl-missing-term"])
def test_the_latent_check_catches_a_wrong_gradient(backend, wrong):
    with pytest.raises(AssertionError, match="relative error"):
        check_latent(backend, wrong, seed=4, n=3, k=2)


class _SigmaSlip(GaussianLatent):
    """σ = exp(log σ²) instead of exp(½ log σ²): a consistent forward and backward, the wrong model."""

    def forward(self, h, eps):
        mu, logvar = self.split(h)
        self.mu, self.eps = mu, eps
        self.sigma = self.xp.exp(logvar)
        n = h.shape[0]
        kl = (self.xp.sum(mu * mu + self.xp.exp(logvar) - logvar) - n * self.k) * (0.5 / n)
        return mu + self.sigma * eps, kl


def check_sampled_variance_is_the_kl_variance(backend, latent_class):
    """z drawn for one (μ, ℓ) over many ε has variance e^ℓ -- the variance the closed-form KL assumes --
    and the KL equals a numerical integral of q log(q/p)."""
    mu, logvar, n = np.array([0.3, -1.2]), np.array([-1.5, 0.8]), 200_000
    h = np.tile(np.concatenate([mu, logvar]), (n, 1))
    eps = np.random.default_rng(0).standard_normal((n, 2))
    z, kl = latent_class(backend.xp, 2).forward(backend.asarray(h), backend.asarray(eps))
    np.testing.assert_allclose(np.var(to_numpy(z), axis=0), np.exp(logvar), rtol=0.02)
    grid = np.linspace(-12, 12, 200_001)
    integral = 0.0
    for m, lv in zip(mu, logvar, strict=True):
        log_q = -0.5 * ((grid - m) ** 2 / np.exp(lv) + lv + math.log(2 * math.pi))
        log_p = -0.5 * (grid**2 + math.log(2 * math.pi))
        integral += float(np.sum(np.exp(log_q) * (log_q - log_p)) * (grid[1] - grid[0]))
    np.testing.assert_allclose(float(to_numpy(kl)), integral, rtol=1e-6)


def test_sigma_is_exp_of_half_log_variance(backend):
    check_sampled_variance_is_the_kl_variance(backend, GaussianLatent)


def test_the_variance_check_catches_sigma_as_exp_of_log_variance(backend):
    with pytest.raises(AssertionError):
        check_sampled_variance_is_the_kl_variance(backend, _SigmaSlip)


# -- reconstruction losses ------------------------------------------------------------------------


@GRAD_SETTINGS
@given(seed=SEEDS, n=st.integers(1, 5), d=st.integers(1, 6))
def test_bernoulli_nll_value_and_gradient(backend, seed, n, d):
    logits = random_array(seed, (n, d), 4.0)
    x = np.random.default_rng(seed + 1).random((n, d))
    xx = backend.asarray(x)
    loss, grad = bernoulli_nll(backend.asarray(logits), xx)
    p = 1 / (1 + np.exp(-logits))
    naive = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p)) / n  # summed over values, mean over samples
    np.testing.assert_allclose(float(to_numpy(loss)), naive, rtol=1e-10)
    numeric = numerical_grad(lambda a: float(to_numpy(bernoulli_nll(backend.asarray(a), xx)[0])), logits)
    assert_close_grad(to_numpy(grad), numeric, "Bernoulli NLL gradient")


@GRAD_SETTINGS
@given(seed=SEEDS, n=st.integers(1, 5), d=st.integers(1, 3), std=st.floats(0.05, 2.0))
def test_gaussian_nll_value_and_gradient(backend, seed, n, d, std):
    mean, x = random_array(seed, (n, d)), random_array(seed + 1, (n, d))
    xx = backend.asarray(x)
    loss, grad = gaussian_nll(backend.asarray(mean), xx, std)
    log_density = -0.5 * ((x - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(float(to_numpy(loss)), -np.sum(log_density) / n, rtol=1e-10)
    numeric = numerical_grad(lambda m: float(to_numpy(gaussian_nll(backend.asarray(m), xx, std)[0])), mean)
    assert_close_grad(to_numpy(grad), numeric, "Gaussian NLL gradient")


# -- the whole loss, every parameter ---------------------------------------------------------------


def _tiny_vae(backend, seed, kind, width, latent, data_dim, activation="tanh"):
    config = VAEConfig(data_shape=(data_dim,), data_kind=kind, latent_dim=latent, enc_hidden=[width],
                       dec_hidden=[width, width], activation=activation, x_std=0.7, dtype="float64")
    vae = VAE(config, backend=backend, seed=seed)
    rng = np.random.default_rng(seed)
    for net in (vae.enc, vae.dec):
        net.params[...] = backend.asarray(0.8 * rng.standard_normal(net.n_params))
    return vae


def check_whole_loss(backend, vae, seed, n):
    rng = np.random.default_rng(seed + 5)
    d = vae.config.data_dim
    x_host = rng.random((n, d)) if vae.config.data_kind == "image" else rng.standard_normal((n, d))
    x, eps = backend.asarray(x_host), backend.asarray(rng.standard_normal((n, vae.config.latent_dim)))
    metrics = vae.gradients(x, eps)
    analytic = {name: to_numpy(net.grads).copy() for name, net in vae.nets.items()}
    assert float(to_numpy(metrics["neg_elbo"])) == pytest.approx(
        float(to_numpy(metrics["recon"])) + float(to_numpy(metrics["kl"])), rel=1e-12)
    for name, net in vae.nets.items():
        p0 = to_numpy(net.params).astype(np.float64)

        def loss(p, net=net):
            net.params[...] = backend.asarray(p)
            recon, kl, _ = vae._losses(x, eps)
            return float(to_numpy(recon)) + float(to_numpy(kl))

        numeric = numerical_grad(loss, p0)
        net.params[...] = backend.asarray(p0)
        assert_close_grad(analytic[name], numeric, f"−ELBO gradient of the {vae.describe(name)}")


@GRAD_SETTINGS
@given(seed=SEEDS, n=st.integers(1, 4), width=st.integers(1, 4), latent=st.integers(1, 3),
       data_dim=st.integers(1, 5), kind=st.sampled_from(["image", "points"]))
def test_whole_elbo_gradient_for_every_parameter(backend, seed, n, width, latent, data_dim, kind):
    check_whole_loss(backend, _tiny_vae(backend, seed, kind, width, latent, data_dim), seed, n)


def test_the_whole_loss_check_catches_a_wrong_latent_gradient(backend, monkeypatch):
    monkeypatch.setattr("tinygan.models.vae.GaussianLatent", _HalfMissing)
    vae = _tiny_vae(backend, 3, "image", 3, 2, 4)
    with pytest.raises(AssertionError, match="gradient of the encoder"):
        check_whole_loss(backend, vae, 3, 3)
