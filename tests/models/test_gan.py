"""The GAN training step on a tiny model: each player's update helps that player, and touches only its own
parameters; sampling, saving and loading leave training state as it was."""

from __future__ import annotations

import os
from itertools import pairwise

import numpy as np
import pytest
from gradcheck import assert_close_grad, conditioning, numerical_grad
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tinygan import GAN, Dense, GANConfig, Layer, ReLU
from tinygan.engine.layers import sigmoid
from tinygan.engine.logit_losses import bce_with_logits
from tinygan.io.errors import DivergenceError


def tiny(**overrides) -> GAN:
    settings = dict(
        data_shape=(6,), data_kind="image", latent_dim=3, g_hidden=[16], g_batchnorm=False,
        d_hidden=[16], d_dropout=0.0, lr_g=1e-3, lr_d=1e-3, batch_size=16,
    )
    settings.update(overrides)
    return GAN(GANConfig(**settings), backend="numpy", seed=1)


@pytest.fixture
def batch():
    rng = np.random.default_rng(7)
    real = (2.0 * rng.random((16, 6)) - 1.0).astype(np.float32)  # model space [-1, 1]
    z = rng.standard_normal((16, 3)).astype(np.float32)
    return real, z


def d_loss(gan: GAN, real: np.ndarray, fake: np.ndarray) -> float:
    loss_real, _ = bce_with_logits(gan.D.forward(real), gan.config.real_label)
    loss_fake, _ = bce_with_logits(gan.D.forward(fake), 0.0)
    return float(loss_real + loss_fake)


def mean_d(gan: GAN, x: np.ndarray) -> float:
    return float(np.mean(sigmoid(gan.D.forward(x), np)))


def test_discriminator_update_lowers_its_loss_on_the_batch(batch):
    real, z = batch
    gan = tiny()
    fake = gan.G.forward(z).copy()  # the fake batch the D update sees
    before = d_loss(gan, real, fake)
    metrics = gan.train_step(real, z)
    assert float(metrics["d_loss"]) == pytest.approx(before, rel=1e-5)  # reported loss: before the update
    assert d_loss(gan, real, fake) < before  # D (not changed by G's update) now separates them better


def test_generator_update_raises_d_of_g_z(batch):
    real, z = batch
    gan = tiny()
    fake_before = gan.G.forward(z).copy()
    gan.train_step(real, z)
    # Judged by the discriminator G was updated against (D after its own update):
    assert mean_d(gan, gan.G.forward(z)) > mean_d(gan, fake_before)


@pytest.mark.parametrize(
    "options", [{}, {"g_batchnorm": True, "d_dropout": 0.3, "pack": 2}], ids=["plain", "bn-dropout-pack"]
)
def test_each_player_is_touched_only_by_its_own_update(batch, options):
    real, z = batch
    gan = tiny(**options)
    snapshots: list[tuple[str, np.ndarray, np.ndarray]] = []

    def snap(label: str) -> None:
        snapshots.append((label, gan.G.params.copy(), gan.D.params.copy()))

    def recording(name: str, step):
        def wrapped(*args) -> None:
            snap(f"before {name}")
            step(*args)
            snap(f"after {name}")

        return wrapped

    gan.opt_d.step = recording("opt_d", gan.opt_d.step)
    gan.opt_g.step = recording("opt_g", gan.opt_g.step)
    for _ in range(2):
        snap("start")
        gan.train_step(real, z)
        snap("end")
    labels = [s[0] for s in snapshots]
    assert labels == ["start", "before opt_d", "after opt_d", "before opt_g", "after opt_g", "end"] * 2
    for (a, g0, d0), (b, g1, d1) in pairwise(snapshots):
        g_changed, d_changed = not np.array_equal(g0, g1), not np.array_equal(d0, d1)
        if (a, b) == ("before opt_d", "after opt_d"):
            assert d_changed and not g_changed, "the D update changes D and only D"
        elif (a, b) == ("before opt_g", "after opt_g"):
            assert g_changed and not d_changed, "the G update changes G and only G"
        elif (a, b) != ("end", "start"):
            assert not g_changed and not d_changed, f"parameters changed between {a!r} and {b!r}"


def test_generator_step_leaves_discriminator_gradients_alone(batch):
    """G's backward pass flows through D without accumulating into D's gradients."""
    real, z = batch
    gan = tiny()
    seen = {}
    original = gan.opt_g.step

    def g_step(*args) -> None:
        seen["d_grads"] = gan.D.grads.copy()
        original(*args)

    d_step = gan.opt_d.step

    def d_step_recording(*args) -> None:
        seen["d_grads_at_d_step"] = gan.D.grads.copy()
        d_step(*args)

    gan.opt_d.step, gan.opt_g.step = d_step_recording, g_step
    gan.train_step(real, z)
    assert np.array_equal(seen["d_grads"], seen["d_grads_at_d_step"])


def test_metrics_are_finite_probabilities(batch):
    real, z = batch
    gan = tiny()
    metrics = {k: float(v) for k, v in gan.train_step(real, z).items()}
    assert set(metrics) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(np.isfinite(list(metrics.values())))
    assert 0 <= metrics["d_real"] <= 1 and 0 <= metrics["d_fake"] <= 1
    assert gan.step == 1 and gan.opt_d.t == 1 and gan.opt_g.t == 1


def test_sampling_with_given_latents_leaves_training_state_alone():
    gan = tiny(g_batchnorm=True)
    x = np.random.default_rng(0).random((64, 6)).astype(np.float32)
    gan.fit(x, steps=5)
    before = (gan.rng.get_state(), gan.state()[0])
    out = gan.sample(9, z=np.zeros((9, 3), np.float32))
    assert out.shape == (9, 6) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    state, arrays = gan.rng.get_state(), gan.state()[0]
    assert state == before[0]
    assert all(np.array_equal(arrays[k], v) for k, v in before[1].items())  # BatchNorm statistics included
    assert all(layer.training for layer in gan.G.layers), "the generator is back in training mode"


def test_save_load_round_trip(tmp_path):
    gan = tiny(g_batchnorm=True, d_dropout=0.2)
    x = np.random.default_rng(0).random((40, 6)).astype(np.float32)
    gan.fit(x, steps=7)
    gan.save(str(tmp_path / "c.npz"), {"note": "hi"})
    back = GAN.load(str(tmp_path / "c.npz"))
    assert back.step == 7 and back.config == gan.config
    assert back.rng.get_state() == gan.rng.get_state()
    for key in ("pos", "epoch"):
        assert getattr(back.data_position, key) == getattr(gan.data_position, key)
    assert np.array_equal(back.data_position.perm, gan.data_position.perm)
    a, b = gan.state()[0], back.state()[0]
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)
    z = np.random.default_rng(3).standard_normal((5, 3)).astype(np.float32)
    assert np.array_equal(gan.sample(5, z=z), back.sample(5, z=z))
    # Loading into the directory form of the path works too.
    (tmp_path / "run").mkdir()
    gan.save(str(tmp_path / "run" / "checkpoint.npz"))
    assert GAN.load(str(tmp_path / "run")).step == 7


def test_fit_counts_are_run_totals_and_callback_can_stop():
    gan = tiny()
    x = np.random.default_rng(0).random((64, 6)).astype(np.float32)
    seen = []
    def callback(p):
        seen.append((p.step, p.record is not None))
        return p.step == 6

    gan.fit(x, steps=10, log_every=4, callback=callback)
    assert gan.step == 6 and seen[-1] == (6, False) and [s for s, logged in seen if logged] == [4]
    history = gan.fit(x, steps=10, log_every=4)  # continues to the total, not 10 more
    assert gan.step == 10 and [r["step"] for r in history] == [8, 10]
    assert gan.fit(x, steps=10) == [] and gan.step == 10


def test_fit_stops_on_non_finite_loss_naming_step_and_quantity(monkeypatch):
    gan = tiny()
    x = np.random.default_rng(0).random((64, 6)).astype(np.float32)
    real_step = GAN.train_step

    def poisoned(self, real, z=None):
        metrics = real_step(self, real, z)
        if self.step == 3:
            metrics["d_real"] = metrics["d_real"] + np.inf
        return metrics

    monkeypatch.setattr(GAN, "train_step", poisoned)
    with pytest.raises(DivergenceError, match=r"^training diverged at step 4: d_real is inf$"):
        gan.fit(x, steps=8, log_every=2)


def test_the_guard_names_the_network():
    from tinygan.training.guard import check_parameters

    gan = tiny()
    check_parameters(gan)
    gan.G.params[0] = np.nan
    with pytest.raises(DivergenceError, match="step 0: generator parameters are not finite"):
        check_parameters(gan)


def test_sampling_without_latents_does_not_shift_training_noise():
    x = np.random.default_rng(0).random((64, 6)).astype(np.float32)
    plain, sampled = tiny(), tiny()
    plain.fit(x, steps=4, batch_size=8)
    sampled.fit(x, steps=2, batch_size=8)
    sampled.sample(5)  # draws from the sampling generator, not the training one
    sampled.fit(x, steps=4, batch_size=8)
    np.testing.assert_array_equal(plain.G.params, sampled.G.params)
    np.testing.assert_array_equal(plain.D.params, sampled.D.params)


def test_averaged_generator_follows_the_ema_formula_and_round_trips(tmp_path):
    gan = tiny(g_ema_decay=0.9, g_batchnorm=True)
    x = np.random.default_rng(0).random((64, 6)).astype(np.float32)
    initial = gan.G.params.copy()
    gan.fit(x, steps=1, batch_size=16)
    np.testing.assert_array_equal(gan.G_avg.params, gan.G.params)  # nothing left of the initial weights
    assert not np.array_equal(gan.G.params, initial)
    avg, live_before = gan.G_avg.params.copy(), gan.G.params.copy()
    gan.fit(x, steps=2, batch_size=16)
    # bias-corrected: (0.9·θ₁ + θ₂) / (0.9 + 1), the decay-weighted mean of the iterates
    np.testing.assert_allclose(gan.G_avg.params, (0.9 * avg + gan.G.params) / 1.9, rtol=1e-5, atol=1e-7)
    assert not np.array_equal(gan.G.params, live_before)
    z = np.random.default_rng(3).standard_normal((5, 3)).astype(np.float32)
    first = gan.sample(5, z=z)
    np.testing.assert_array_equal(gan.sample(5, z=z), first)  # standing statistics are repeatable
    gan.save(str(tmp_path / "c.npz"))
    np.testing.assert_array_equal(GAN.load(str(tmp_path / "c.npz")).sample(5, z=z), first)
    gan.G_avg.params[...] = gan.G.params  # sampling really uses the averaged weights
    assert not np.array_equal(gan.sample(5, z=z), first)


def test_learning_rates_decay_exponentially_over_the_run():
    gan = tiny(lr_decay=0.01)
    x = np.random.default_rng(0).random((64, 6)).astype(np.float32)
    seen = []
    original = gan.opt_g.step
    gan.opt_g.step = lambda lr=None: (seen.append(float(lr)), original(lr))
    gan.fit(x, steps=10, batch_size=16)
    # step t (0-based) of 10 runs at lr₀ · 0.01^(t/10); the config holds lr₀ unchanged
    assert seen == pytest.approx([1e-3 * 0.01 ** (t / 10) for t in range(10)], rel=1e-12)
    assert gan.config.lr_g == 1e-3 and gan.learning_rates()[1] == pytest.approx(1e-3 * 0.01)


# -- the generator's gradient through the discriminator, checked numerically ----------------------


class Shift(Layer):
    """A user's own layer with a parameter: ``y = x + b``. Its backward adds ``Σ dy`` to ``db``."""

    def __init__(self, width: int) -> None:
        self.width = width

    def param_shapes(self):
        return {"b": (self.width,)}

    def init_params(self, params):
        params["b"][...] = 0.5

    def forward(self, x):
        return x + self.params["b"]

    def backward(self, dy, need_dx=True, need_dparams=True):
        if need_dparams:
            self.grads["b"] += self.xp.sum(dy, axis=0)
        return dy if need_dx else None


def test_user_layers_work_with_averaging_saving_and_loading(tmp_path):
    config = GANConfig(data_shape=(2,), data_kind="points", latent_dim=3, g_output=None, batch_size=8,
                       d_dropout=0.0, g_ema_decay=0.9)
    gen = [Dense(3, 8, "he"), Shift(8), ReLU(), Dense(8, 2)]
    disc = [Dense(2, 8, "he"), ReLU(), Dense(8, 1)]
    gan = GAN(config, seed=1, generator=gen, discriminator=disc)
    x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    gan.fit(x, steps=6, log_every=3)
    assert isinstance(gan.G_avg.net.layers[1], Shift)  # the averaged copy holds the user's layer too
    gan.save(str(tmp_path / "c.npz"))
    again = GAN.load(str(tmp_path / "c.npz"))
    z = np.ones((4, 3), np.float32)
    np.testing.assert_array_equal(again.sample(4, z=z), gan.sample(4, z=z))


def test_a_layer_that_cannot_describe_itself_is_refused_at_construction():
    class Opaque(Shift):
        def __init__(self, n: int) -> None:
            super().__init__(n)

    config = GANConfig(data_shape=(2,), data_kind="points", latent_dim=3, g_output=None, batch_size=8)
    with pytest.raises(TypeError, match="layer Opaque cannot describe itself: .*n"):
        GAN(config, generator=[Dense(3, 8), Opaque(8), Dense(8, 2)], discriminator=[Dense(2, 1)])


@settings(max_examples=int(os.environ.get("TINYGAN_GRADCHECK_EXAMPLES", "20")) // 2, deadline=None)
@given(seed=st.integers(0, 2**31), half_batch=st.integers(2, 4), latent=st.integers(1, 3),
       width=st.integers(2, 4), pieces=st.integers(1, 3), pack=st.sampled_from([1, 2]))
def test_generator_gradient_through_the_discriminator(seed, half_batch, latent, width, pieces, pack):
    """dL/dθ_G of L = BCE(D(G(z)), 1) as train_step computes it, against central differences in
    float64: BatchNorm in G, BatchNorm and maxout in D, packing."""
    config = GANConfig(
        data_shape=(3,), data_kind="points", latent_dim=latent, g_hidden=[width], g_batchnorm=True,
        g_output="tanh", d_hidden=[width], d_activation="maxout", maxout_pieces=pieces, d_batchnorm=True,
        d_dropout=0.0, g_ema_decay=0.0, pack=pack, batch_size=2 * half_batch * pack, dtype="float64",
    )
    gan = GAN(config, backend="numpy", seed=seed)
    rng = np.random.default_rng(seed)
    for net in (gan.G, gan.D):
        net.params[...] = rng.standard_normal(net.n_params)
    z = rng.standard_normal((config.batch_size, latent))
    (d_kink, d_var), (g_kink, g_var) = conditioning(gan.D, gan._pack(gan.G.forward(z))), conditioning(gan.G, z)
    assume(min(d_kink, g_kink) > 1e-3 and min(d_var, g_var) > 1e-2)  # away from kinks and flat BatchNorm columns

    def loss(params: np.ndarray) -> float:
        gan.G.params[...] = params
        logits = gan.D.forward(gan._pack(gan.G.forward(z)))
        return float(bce_with_logits(logits, 1.0)[0])

    p0 = gan.G.params.copy()
    numeric = numerical_grad(loss, p0)
    gan.G.params[...] = p0
    gan.generator_gradients(gan.G.forward(z))
    assert_close_grad(gan.G.grads.copy(), numeric, "generator gradient through D")


def test_slerp_walks_the_great_circle_between_latents():
    from tinygan.models.latents import slerp

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 16)), rng.standard_normal((3, 16))
    path = slerp(a, b, 5)
    assert path.shape == (3, 5, 16) and path.dtype == np.float32
    np.testing.assert_allclose(path[:, 0], a, rtol=1e-6)
    np.testing.assert_allclose(path[:, -1], b, rtol=1e-6)
    # between latents of equal norm: equal angular steps (equal gaps), and the norm kept all the way
    # (a straight line would dip in the middle)
    b_same = b / np.linalg.norm(b, axis=1, keepdims=True) * np.linalg.norm(a, axis=1, keepdims=True)
    circle = slerp(a, b_same, 7).astype(np.float64)
    gaps = np.linalg.norm(np.diff(circle, axis=1), axis=2)
    np.testing.assert_allclose(gaps, gaps[:, :1].repeat(6, axis=1), rtol=1e-5)
    norms = np.linalg.norm(circle, axis=2)
    np.testing.assert_allclose(norms, np.linalg.norm(a, axis=1)[:, None].repeat(7, axis=1), rtol=1e-5)
    np.testing.assert_allclose(slerp(a, a, 3)[:, 1], a, rtol=1e-6)  # parallel rows: the straight line
