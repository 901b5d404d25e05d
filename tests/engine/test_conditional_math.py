"""A class-conditional GAN's gradients, against central differences of its losses written out by hand.

D's input is built here independently of :mod:`tinygan.models.conditioning`: ``[x, onehot(y)]`` per sample, then
packed (concat form), or ``x`` packed with the projection head told the classes. Penalties take ``∇ₓD``
with respect to the image columns only. Both forms, with each objective's penalties, packing, dropout
and spectral norms; then the projection head's second-order backward on every backend, the whole step
on every backend, and wrong versions that these checks catch.
"""

import os

import numpy as np
import pytest
from gradcheck import GRAD_SETTINGS, assert_close_grad, conditioning, numerical_grad, random_array, random_net
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_double_backward import _fixed_masks, critic_layers, second_order_check

from tinygan import GAN, GANConfig
from tinygan.backend import to_numpy
from tinygan.engine.layers import ProjectionHead
from tinygan.engine.objectives import d_fake_loss, d_real_loss, g_loss, gp_penalty, r1_penalty

EXAMPLES = settings(max_examples=int(os.environ.get("TINYGAN_GRADCHECK_EXAMPLES", "20")) // 2, deadline=None)
KINK = 1e-3
FORMS = ["concat", "projection"]
VARIANTS = {
    "bce": {},
    "hinge-sn": {"loss": "hinge", "d_spectral_norm": True},
    "wgan-gp-dropout": {"loss": "wgan-gp", "d_dropout": 0.3, "gp_weight": 3.0},
    "bce-r1-pack": {"r1_gamma": 2.0, "pack": 2, "real_label": 0.9},
    "wgan-gp-r1-maxout-pack": {"loss": "wgan-gp", "r1_gamma": 0.5, "d_activation": "maxout", "maxout_pieces": 2,
                               "pack": 2},
}
K, DIM = 3, 3


def tiny(seed, form, backend="numpy", **overrides):
    config = dict(data_shape=(DIM,), data_kind="points", latent_dim=2, g_hidden=[4], g_batchnorm=False,
                  g_output=None, d_hidden=[4, 3], d_dropout=0.0, g_ema_decay=0.0, dtype="float64",
                  n_classes=K, conditioning=form)
    config.update(overrides)
    config["batch_size"] = 4 * config.get("pack", 1)
    return GAN(GANConfig(**config), backend=backend, seed=seed)


def judged(gan, x, y):
    """D's input for samples ``x`` of classes ``y``, written out."""
    c = gan.config
    if c.conditioning == "concat":
        x = np.concatenate([x, np.eye(K)[y]], axis=1)
    else:
        gan.D.layers[-1].set_labels(y.reshape(-1, c.pack))
    return x.reshape(x.shape[0] // c.pack, -1)


def image_gradient(gan, x):
    """``∇ D`` at the packed input ``x``, with respect to the image columns of each packed row."""
    out = gan.D.forward(x)
    g = gan.D.backward(np.ones_like(out), need_dparams=False)
    if gan.config.conditioning == "concat":
        g = g.reshape(-1, DIM + K)[:, :DIM].reshape(g.shape[0], -1)
    return g


def reference_d_loss(gan, real, fake, y, state):
    """(D's loss as the formulas state it, the distance of every pass to its nearest kink)."""
    c, D = gan.config, gan.D
    gan.rng.set_state(state)
    kinks = []

    def forward(x):
        saved = gan.rng.get_state()
        kinks.append(conditioning(D, x)[0])  # draws the same dropout mask as the forward below
        gan.rng.set_state(saved)
        return D.forward(x)

    a_real, a_fake = forward(judged(gan, real, y)), forward(judged(gan, fake, y))
    margins = np.concatenate([a_real.ravel(), a_fake.ravel()])
    kinks.append(np.min(np.abs(np.abs(margins) - 1.0)) if c.loss == "hinge" else np.inf)
    loss = float(d_real_loss(c.loss, c.real_label)(a_real)[0]) + float(d_fake_loss(c.loss)(a_fake)[0])
    for penalised, x in ((c.loss == "wgan-gp", "x_hat"), (c.r1_gamma > 0, "real")):
        if not penalised:
            continue
        if x == "x_hat":  # one weight per packed group, between a real and a fake image of the same class
            eps = np.repeat(gan.rng.uniform((real.shape[0] // c.pack, 1), real.dtype), c.pack, axis=0)
            inputs = judged(gan, fake + eps * (real - fake), y)
        else:
            inputs = judged(gan, real, y)
        saved = gan.rng.get_state()
        forward(inputs)
        gan.rng.set_state(saved)
        g = image_gradient(gan, inputs)
        norms = np.sqrt(np.sum(g**2, axis=1) + 1e-12)
        loss += c.gp_weight * np.mean((norms - 1.0) ** 2) if x == "x_hat" else c.r1_gamma / 2 * np.mean(norms**2)
    return loss, min(kinks)


def _required(ok):
    """``assume`` for a fixed example, which has no other example to draw."""
    assert ok, "this fixed example lies too close to a kink; pick another seed"


def _d_gradients(gan, seed, require=assume):
    """(analytic D gradient, its loss, central differences of the reference loss, its loss)."""
    rng = np.random.default_rng(seed)
    gan.D.params[...] = rng.standard_normal(gan.D.n_params)
    n = gan.config.batch_size
    real, fake = rng.standard_normal((n, DIM)), rng.standard_normal((n, DIM))
    y = rng.integers(0, K, n)
    state = gan.rng.get_state()
    p0 = gan.D.params.copy()
    require(reference_d_loss(gan, real, fake, y, state)[1] > KINK)

    def loss(params):
        gan.D.params[...] = params
        return reference_d_loss(gan, real, fake, y, state)[0]

    numeric = numerical_grad(loss, p0)
    expected = loss(p0)
    gan.D.params[...] = p0
    gan.rng.set_state(state)
    value = float(gan._discriminator_gradients(real, fake, y)[0])
    return gan.D.grads.copy(), value, numeric, expected


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("form", FORMS)
@EXAMPLES
@given(seed=st.integers(0, 2**31))
def test_conditional_discriminator_gradient(form, variant, seed):
    analytic, value, numeric, expected = _d_gradients(tiny(seed, form, **VARIANTS[variant]), seed)
    assert value == pytest.approx(expected, rel=1e-10)
    assert_close_grad(analytic, numeric, f"D gradient, {form}, {variant}")


def _g_gradients(gan, seed, wrong_classes=False, require=assume):
    rng = np.random.default_rng(seed)
    for net in (gan.G, gan.D):
        net.params[...] = rng.standard_normal(net.n_params)
    z, y = rng.standard_normal((4 * gan.config.pack, 2)), rng.integers(0, K, 4 * gan.config.pack)
    g_in = np.concatenate([z, np.eye(K)[y]], axis=1)
    require(min(conditioning(gan.G, g_in)[0], conditioning(gan.D, judged(gan, gan.G.forward(g_in), y))[0]) > KINK)

    def loss(params):
        gan.G.params[...] = params
        return float(g_loss(gan.config.loss)(gan.D.forward(judged(gan, gan.G.forward(g_in), y)))[0])

    p0 = gan.G.params.copy()
    numeric = numerical_grad(loss, p0)
    gan.G.params[...] = p0
    gan.generator_gradients(gan.G.forward(g_in), np.roll(y, 1) if wrong_classes else y)
    return gan.G.grads.copy(), numeric


@pytest.mark.parametrize("overrides", [{}, {"loss": "hinge", "pack": 2}, {"loss": "wgan"}], ids=["bce", "hinge-pack",
                                                                                                   "wgan"])
@pytest.mark.parametrize("form", FORMS)
@EXAMPLES
@given(seed=st.integers(0, 2**31))
def test_conditional_generator_gradient(form, overrides, seed):
    analytic, numeric = _g_gradients(tiny(seed, form, **overrides), seed)
    assert_close_grad(analytic, numeric, f"G gradient, {form}")


# -- the checks can fail ---------------------------------------------------------------------------


def test_a_penalty_on_the_one_hot_columns_is_caught():
    """The concat form's penalty must see the image's gradient only: without the mask it sees the one-hot's too."""
    gan = tiny(1, "concat", r1_gamma=2.0)
    gan.critic.input_mask = None
    analytic, _, numeric, _ = _d_gradients(gan, 1, _required)
    with pytest.raises(AssertionError, match="relative error"):
        assert_close_grad(analytic, numeric, "D gradient without the mask")


def test_a_projection_head_penalised_without_its_class_table_is_caught():
    """The head's second-order term has two parts; forgetting the class table's (dE) is caught."""
    gan = tiny(2, "projection", loss="wgan-gp")
    head = gan.D.layers[-1]
    first_order = head.add_weight_gradients

    def forgets_the_table(h, da):
        if h is head.h:  # its own backward: unchanged
            return first_order(h, da)
        head.add_gradient("W", lambda out: head.ops.matmul(h.T, da, out=out))

    head.add_weight_gradients = forgets_the_table
    analytic, _, numeric, _ = _d_gradients(gan, 2, _required)
    with pytest.raises(AssertionError, match="relative error"):
        assert_close_grad(analytic, numeric, "D gradient without dE's second-order term")


@pytest.mark.parametrize("form", FORMS)
def test_a_generator_judged_with_other_classes_is_caught(form):
    analytic, numeric = _g_gradients(tiny(3, form), 3, wrong_classes=True, require=_required)
    with pytest.raises(AssertionError, match="relative error"):
        assert_close_grad(analytic, numeric, "G gradient with the wrong classes")


# -- the projection head's second-order backward, on every backend ---------------------------------


@GRAD_SETTINGS
@given(seed=st.integers(0, 2**31), n=st.integers(1, 5), n_in=st.integers(1, 4),
       widths=st.lists(st.integers(1, 4), min_size=1, max_size=2), kind=st.sampled_from(["relu", "leaky_relu"]),
       classes=st.integers(1, 4), pack=st.integers(1, 2), dropout=st.sampled_from([0.0, 0.4]))
def test_projection_head_penalty_gradient(backend, seed, n, n_in, widths, kind, classes, pack, dropout):
    layers = critic_layers(n_in, widths, kind, dropout=dropout)
    net = random_net(backend, [*layers[:-1], ProjectionHead(widths[-1], classes)], seed)
    net.layers[-1].set_labels(backend.asarray(np.random.default_rng(seed).integers(0, classes, (n, pack))))
    x = random_array(seed + 2, (n, n_in))
    reseed = _fixed_masks(net, backend, seed)
    reseed()
    assume(conditioning(net, x)[0] > KINK)
    for penalty in (r1_penalty, gp_penalty):
        analytic, numeric = second_order_check(
            net, x, lambda g, p=penalty: float(to_numpy(p(np.asarray(g), 1.5)[0])),
            lambda g, p=penalty: p(g, 1.5)[1], reseed,
        )
        assert_close_grad(analytic, numeric, f"∂{penalty.__name__}/∂θ through a ProjectionHead")


# -- the whole step, on every backend ---------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_a_conditional_step_is_the_same_on_every_backend(backend, form):
    """Two steps with penalties and packing, then samples of chosen classes: as on NumPy, in float64."""
    runs = []
    for be in ("numpy", backend):
        gan = tiny(5, form, backend=be, loss="wgan-gp", r1_gamma=1.0, pack=2, g_batchnorm=[True], g_ema_decay=0.5)
        gan.set_horizon(2)
        rng = np.random.default_rng(0)
        for _ in range(2):
            real = gan.backend.asarray(rng.standard_normal((8, DIM)))
            z = gan.backend.asarray(rng.standard_normal((8, 2)))
            gan.train_step(real, z, gan.backend.asarray(rng.integers(0, K, 8)))
        runs.append((gan.state()[0], gan.sample(6, z=np.ones((6, 2)), labels=[0, 1, 2, "2", 1, 0])))
    (want, want_samples), (got, got_samples) = runs
    np.testing.assert_allclose(got_samples, want_samples, rtol=1e-9, atol=1e-12)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-9, atol=1e-12, err_msg=name)
