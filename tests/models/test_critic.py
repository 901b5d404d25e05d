"""Each objective's whole D update and G update, against central differences of the losses as written.

The reference values below are computed from the formulas, independently of :class:`tinygan.models.critic.Critic`:
D's loss on data and generated samples, plus ``λ·mean(‖∇ₓD(x̂)‖ − 1)²`` at the interpolates and
``γ/2·mean‖∇ₓD(x)‖²`` on the data, where ``∇ₓD`` comes from the ordinary (separately checked) backward
pass. The model's random state is reset before each evaluation, so dropout masks and the interpolation
weights are the same draws the update makes. Also: n_critic, weight clipping, and the refusals.
"""

import os

import numpy as np
import pytest
from gradcheck import assert_close_grad, conditioning, numerical_grad
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tinygan import GAN, BatchNorm, Dense, GANConfig, LeakyReLU
from tinygan.engine.objectives import d_fake_loss, d_real_loss, g_loss

EXAMPLES = settings(max_examples=int(os.environ.get("TINYGAN_GRADCHECK_EXAMPLES", "20")) // 2, deadline=None)
KINK = 1e-3

VARIANTS = {
    "hinge": dict(loss="hinge"),
    "lsgan-sn": dict(loss="lsgan", d_spectral_norm=True),
    "wgan": dict(loss="wgan"),
    "wgan-gp-dropout": dict(loss="wgan-gp", d_dropout=0.3, gp_weight=3.0),
    "wgan-gp-sn-maxout": dict(loss="wgan-gp", d_spectral_norm=True, d_activation="maxout", maxout_pieces=2),
    "bce-r1-pack-dropout": dict(r1_gamma=2.0, pack=2, d_dropout=0.3, real_label=0.9),
    "hinge-r1-sn": dict(loss="hinge", r1_gamma=0.5, d_spectral_norm=True),
}


def tiny(seed, **overrides):
    settings = dict(data_shape=(3,), data_kind="points", latent_dim=2, g_hidden=[4], g_batchnorm=False,
                    g_output=None, d_hidden=[4, 3], d_dropout=0.0, g_ema_decay=0.0, dtype="float64")
    settings.update(overrides)
    settings["batch_size"] = 4 * settings.get("pack", 1)
    return GAN(GANConfig(**settings), backend="numpy", seed=seed)


def _input_gradient(D, x):
    out = D.forward(x)
    return D.backward(np.ones_like(out), need_dparams=False)


def reference_d_loss(gan, real, fake, state):
    """(D's loss as the formulas state it, the distance of every pass to its nearest kink)."""
    c, D = gan.config, gan.D
    real, fake = gan._pack(real), gan._pack(fake)
    gan.rng.set_state(state)
    kinks = []

    def forward(x):
        kinks.append(conditioning(D, x)[0])  # draws the same dropout mask as the forward below
        gan.rng.set_state(saved)
        return D.forward(x)

    saved = gan.rng.get_state()
    a_real = forward(real)
    saved = gan.rng.get_state()
    a_fake = forward(fake)
    margins = np.concatenate([a_real.ravel(), a_fake.ravel()])
    kinks.append(np.min(np.abs(np.abs(margins) - 1.0)) if c.loss == "hinge" else np.inf)
    loss = float(d_real_loss(c.loss, c.real_label)(a_real)[0]) + float(d_fake_loss(c.loss)(a_fake)[0])
    if c.loss == "wgan-gp":
        eps = gan.rng.uniform((real.shape[0], 1), real.dtype)
        x_hat = fake + eps * (real - fake)
        saved = gan.rng.get_state()
        forward(x_hat)
        gan.rng.set_state(saved)
        g = _input_gradient(D, x_hat)
        loss += c.gp_weight * np.mean((np.sqrt(np.sum(g**2, axis=1) + 1e-12) - 1.0) ** 2)
    if c.r1_gamma:
        saved = gan.rng.get_state()
        forward(real)
        gan.rng.set_state(saved)
        loss += c.r1_gamma / 2 * np.mean(np.sum(_input_gradient(D, real) ** 2, axis=1))
    return loss, min(kinks)


def _d_gradient_check(gan, seed, require=assume):
    rng = np.random.default_rng(seed)
    gan.D.params[...] = rng.standard_normal(gan.D.n_params)
    real = rng.standard_normal((gan.config.batch_size, 3))
    fake = rng.standard_normal((gan.config.batch_size, 3))
    state = gan.rng.get_state()
    p0 = gan.D.params.copy()
    require(reference_d_loss(gan, real, fake, state)[1] > KINK)

    def loss(params):
        gan.D.params[...] = params
        return reference_d_loss(gan, real, fake, state)[0]

    numeric = numerical_grad(loss, p0)
    gan.D.params[...] = p0
    gan.rng.set_state(state)
    value = float(gan._discriminator_gradients(real, fake)[0])
    assert value == pytest.approx(loss(p0), rel=1e-10)
    assert_close_grad(gan.D.grads.copy(), numeric, "D gradient")


@pytest.mark.parametrize("variant", VARIANTS)
@EXAMPLES
@given(seed=st.integers(0, 2**31))
def test_discriminator_gradient_of_each_objective(variant, seed):
    _d_gradient_check(tiny(seed, **VARIANTS[variant]), seed)


def _interpolates_beyond_the_data(real, fake, critic):
    eps = critic.rng.uniform((real.shape[0], 1), real.dtype)
    return real + eps * (real - fake)  # ε(x − G(z)) added to x, not to G(z)


@pytest.mark.parametrize("wrong", ["interpolates", "r1-on-fake"])
def test_the_check_catches_a_miswired_penalty(wrong):
    gan = tiny(3, loss="wgan-gp") if wrong == "interpolates" else tiny(3, r1_gamma=2.0)
    critic = gan.critic
    if wrong == "interpolates":
        critic._interpolates = lambda real, fake: _interpolates_beyond_the_data(real, fake, critic)
    else:
        penalise = critic._penalise
        critic._penalise = lambda x, penalty, weight: penalise(-x, penalty, weight)  # not the data
    with pytest.raises(AssertionError):
        _d_gradient_check(gan, 3, require=lambda away_from_kinks: None)


@pytest.mark.parametrize("loss_name", ["bce", "hinge", "lsgan", "wgan"])
@EXAMPLES
@given(seed=st.integers(0, 2**31))
def test_generator_gradient_of_each_objective(loss_name, seed):
    gan = tiny(seed, loss=loss_name)
    rng = np.random.default_rng(seed)
    for net in (gan.G, gan.D):
        net.params[...] = rng.standard_normal(net.n_params)
    z = rng.standard_normal((4, 2))
    assume(min(conditioning(gan.G, z)[0], conditioning(gan.D, gan.G.forward(z))[0]) > KINK)

    def loss(params):
        gan.G.params[...] = params
        return float(g_loss(loss_name)(gan.D.forward(gan.G.forward(z)))[0])

    p0 = gan.G.params.copy()
    numeric = numerical_grad(loss, p0)
    gan.G.params[...] = p0
    gan.generator_gradients(gan.G.forward(z))
    assert_close_grad(gan.G.grads.copy(), numeric, f"G gradient, {loss_name}")


# -- n_critic, clipping, refusals ------------------------------------------------------------------


def test_n_critic_updates_d_on_a_batch_of_its_own_each_and_counts_g_updates():
    gan = tiny(0, n_critic=3)
    x = np.random.default_rng(0).standard_normal((40, 3))
    seen = []
    original = gan._discriminator_gradients
    gan._discriminator_gradients = lambda real, fake, y: (seen.append(real.copy()), original(real, fake, y))[1]
    gan.fit(x, steps=3)  # 12 rows a step: 3 steps fit in one epoch of 40
    assert gan.step == 3 and gan.opt_g.steps == 3 and gan.opt_d.steps == 9
    rows = np.concatenate(seen)
    assert rows.shape == (36, 3) and len({r.tobytes() for r in rows}) == 36  # every batch different data
    assert gan.data_position.epoch == 1 and gan.data_position.pos == 36


def test_wgan_clips_every_d_parameter_after_each_update():
    gan = tiny(0, loss="wgan", wgan_clip=0.05, lr_d=0.1)
    x = np.random.default_rng(0).standard_normal((40, 3))
    gan.fit(x, steps=2)
    assert np.abs(gan.D.params).max() == pytest.approx(0.05)
    unclipped = tiny(0, loss="wgan", wgan_clip=0.0, lr_d=0.1)
    unclipped.fit(x, steps=2)
    assert np.abs(unclipped.D.params).max() > 0.05


@pytest.mark.parametrize("overrides, message", [
    (dict(r1_gamma=1.0, d_batchnorm=True), "d_batchnorm = True: a gradient penalty .* set d_batchnorm false"),
    (dict(loss="wgan-gp", d_activation="tanh"), "d_activation = 'tanh': .* piecewise-linear activations only"),
    (dict(loss="hinge", real_label=0.9), "real_label = 0.9: label smoothing belongs to the bce loss, not hinge"),
    (dict(gp_weight=5.0), "gp_weight = 5.0: the gradient penalty's weight belongs to the wgan-gp loss, not bce"),
    (dict(loss="hinge", wgan_clip=0.1), "wgan_clip = 0.1: weight clipping belongs to the wgan loss, not hinge"),
    (dict(loss="nope"), "loss = 'nope': expected one of bce, hinge, lsgan, wgan, wgan-gp"),
    (dict(n_critic=0), "n_critic = 0: expected a positive integer"),
])
def test_settings_that_do_not_fit_the_objective_are_named(overrides, message):
    with pytest.raises(ValueError, match=f"^GAN config {message}"):
        tiny(0, **overrides)


def test_a_penalised_critic_with_batchnorm_given_as_layers_is_refused():
    config = GANConfig(data_shape=(3,), data_kind="points", latent_dim=2, g_output=None, r1_gamma=1.0, batch_size=4)
    critic = [Dense(3, 4), BatchNorm(4), LeakyReLU(), Dense(4, 1)]
    with pytest.raises(ValueError, match="a penalised critic needs .* layer 1 is BatchNorm$"):
        GAN(config, generator=[Dense(2, 3)], discriminator=critic)
