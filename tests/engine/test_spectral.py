"""Spectral normalisation: the backward through W/σ(W) with u fixed, the power iteration, its state in checkpoints."""

import numpy as np
import pytest
from gradcheck import GRAD_SETTINGS, check_network, conditioning, random_array, random_net
from hypothesis import assume, given
from hypothesis import strategies as st

from tinygan import GAN, Dense, GANConfig, LeakyReLU
from tinygan.backend import to_numpy
from tinygan.engine.layers import layer_from_spec
from tinygan.engine.spectral import SpectralDense, spectral_normalised

SEEDS = st.integers(0, 2**31)
BATCH, WIDTH = st.integers(1, 6), st.integers(1, 5)


@GRAD_SETTINGS
@given(seed=SEEDS, n=BATCH, n_in=WIDTH, n_out=WIDTH)
def test_spectral_dense_gradients_with_u_fixed(backend, seed, n, n_in, n_out):
    """Exactly the function y = x W/‖Wu‖ + b (u the stored vector), for W, b and x."""
    net = random_net(backend, [SpectralDense(n_in, n_out)], seed)
    check_network(net, random_array(seed + 2, (n, n_in)), random_array(seed + 3, (n, n_out)))


@GRAD_SETTINGS
@given(seed=SEEDS, n=BATCH, n_in=WIDTH, hidden=WIDTH, n_out=WIDTH)
def test_spectral_dense_gradients_between_layers(backend, seed, n, n_in, hidden, n_out):
    net = random_net(backend, [Dense(n_in, hidden), LeakyReLU(0.2), SpectralDense(hidden, n_out)], seed)
    x = random_array(seed + 2, (n, n_in))
    assume(conditioning(net, x)[0] > 1e-3)
    check_network(net, x, random_array(seed + 3, (n, n_out)))


class _SigmaConstant(SpectralDense):
    """The tempting shortcut: treat σ as a constant, ∂L/∂W = G/σ."""

    def add_weight_gradient(self, g):
        self.grads["W"] += g / self.sigma


def test_the_check_catches_sigma_treated_as_a_constant(backend):
    net = random_net(backend, [Dense(3, 4), _SigmaConstant(4, 3)], 5)
    with pytest.raises(AssertionError, match="relative error"):
        check_network(net, random_array(6, (5, 3)), random_array(7, (5, 3)))


def test_power_iteration_finds_the_largest_singular_value(backend):
    net = random_net(backend, [SpectralDense(7, 5)], 3)
    layer = net.layers[0]
    for _ in range(300):
        layer.power_iteration()
    net.forward(backend.asarray(random_array(1, (2, 7))))
    w = to_numpy(net.params[:35]).reshape(7, 5)
    top = np.linalg.svd(w, compute_uv=False)[0]
    assert float(to_numpy(layer.sigma)) == pytest.approx(top, rel=1e-9)
    assert np.linalg.svd(to_numpy(layer.weight), compute_uv=False)[0] == pytest.approx(1.0, rel=1e-9)


def test_layers_are_converted_and_rebuilt_by_name():
    layers = spectral_normalised([Dense(3, 4, "he", 0.2), LeakyReLU(0.2), Dense(4, 1)])
    assert [type(layer).__name__ for layer in layers] == ["SpectralDense", "LeakyReLU", "SpectralDense"]
    assert layers[0].spec() == {"type": "SpectralDense", "n_in": 3, "n_out": 4, "init": "he", "leak": 0.2}
    assert type(layer_from_spec(layers[0].spec())) is SpectralDense
    assert spectral_normalised(layers)[0] is layers[0]


def _tiny(**overrides):
    config = GANConfig(data_shape=(6,), data_kind="image", latent_dim=3, g_hidden=[8], g_batchnorm=False,
                       d_hidden=[8, 8], d_spectral_norm=True, batch_size=8, **overrides)
    return GAN(config, backend="numpy", seed=2)


def test_one_power_iteration_per_d_update(monkeypatch):
    calls = []
    monkeypatch.setattr(SpectralDense, "power_iteration", lambda self: calls.append(self))
    gan = _tiny(n_critic=3)
    x = np.random.default_rng(0).random((64, 6)).astype(np.float32)
    calls.clear()
    gan.fit(x, steps=2)
    assert len(calls) == 2 * 3 * 3  # steps × D updates per step × spectrally normalised layers
    assert all(isinstance(layer, SpectralDense) for layer in gan.D.layers[::3])


def test_u_is_saved_and_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    x = np.random.default_rng(0).random((64, 6)).astype(np.float32)
    straight = _tiny()
    straight.fit(x, steps=6)
    first = _tiny()
    first.fit(x, steps=3)
    first.save(str(tmp_path / "c.npz"))
    arrays, _ = first.state()
    assert {"D/0.u", "D/3.u", "D/6.u"} <= set(arrays)
    resumed = GAN.load(str(tmp_path / "c.npz"))
    assert isinstance(resumed.D.layers[0], SpectralDense)
    resumed.fit(x, steps=6)
    a, b = straight.state()[0], resumed.state()[0]
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not np.array_equal(a["D/0.u"], arrays["D/0.u"])  # u moved on during training
