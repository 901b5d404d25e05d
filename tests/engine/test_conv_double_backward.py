"""The second-order backward through convolutional critics (R1 and WGAN-GP), by central differences, as
tests/engine/test_double_backward.py checks dense ones; and spectral normalisation of a convolution's weight."""

import numpy as np
import pytest
from gradcheck import GRAD_SETTINGS, assert_close_grad, check_network, conditioning, random_array, random_net
from hypothesis import assume, given
from hypothesis import strategies as st
from test_double_backward import second_order_check

from tinygan import BatchNorm2d, Conv2d, ConvTranspose2d, Dense, Dropout, Flatten, LeakyReLU, Reshape, Sequential
from tinygan.backend import to_numpy
from tinygan.engine.double_backward import InputGradient
from tinygan.engine.layers import layer_from_spec
from tinygan.engine.objectives import gp_penalty, r1_penalty
from tinygan.engine.spectral import SpectralConv2d, power_iterations, spectral_normalised

SEEDS = st.integers(0, 2**31)
KINK = 1e-3


def conv_critic(c, size, k, s, p, width, dropout=0.0, spectral=False, transpose=False):
    """conv → leaky ReLU (→ dropout) → conv (or transposed conv) → flatten → dense(·, 1), on ``size × size × c``."""
    first = Conv2d(c, width, k, s, p)
    h, w, _ = first.output_shape(size, size)
    second = ConvTranspose2d(width, 2, 2, 1, 0) if transpose else Conv2d(width, 2, 2, 1, 1)
    h, w, _ = second.output_shape(h, w)
    layers = [first, LeakyReLU(0.2), *([Dropout(dropout)] if dropout else []), second, Flatten(), Dense(h * w * 2, 1)]
    return spectral_normalised(layers) if spectral else layers


def _fixed_masks(net, backend, seed):
    def reseed():
        for layer in net.layers:
            if isinstance(layer, Dropout):
                layer.rng = backend.rng(seed)

    return reseed


CRITICS = dict(
    seed=SEEDS, n=st.integers(1, 3), c=st.integers(1, 2), size=st.integers(3, 5), k=st.integers(1, 3),
    s=st.integers(1, 2), p=st.integers(0, 1), width=st.integers(1, 3), dropout=st.sampled_from([0.0, 0.4]),
    spectral=st.booleans(), transpose=st.booleans(),
)


def _drawn(backend, seed, n, c, size, k, s, p, width, dropout, spectral, transpose):
    assume(p < k)
    net = random_net(backend, conv_critic(c, size, k, s, p, width, dropout, spectral, transpose), seed, 0.7)
    x = random_array(seed + 2, (n, size, size, c))
    reseed = _fixed_masks(net, backend, seed)
    reseed()
    assume(conditioning(net, x)[0] > KINK)
    return net, x, reseed


@GRAD_SETTINGS
@given(**CRITICS)
def test_second_order_backward_through_convolutions(backend, seed, n, c, size, k, s, p, width, dropout, spectral,
                                                    transpose):
    net, x, reseed = _drawn(backend, seed, n, c, size, k, s, p, width, dropout, spectral, transpose)
    r = random_array(seed + 5, x.shape)
    analytic, numeric = second_order_check(
        net, x, lambda g: float(np.sum(g * r)), lambda g: backend.asarray(r, dtype=g.dtype), reseed
    )
    assert_close_grad(analytic, numeric, "∂⟨R, ∇ₓD⟩/∂θ")


@pytest.mark.parametrize("penalty", [r1_penalty, gp_penalty], ids=["r1", "wgan-gp"])
@GRAD_SETTINGS
@given(**CRITICS, weight=st.floats(0.1, 10.0))
def test_penalties_through_a_convolutional_critic(backend, penalty, seed, n, c, size, k, s, p, width, dropout,
                                                  spectral, transpose, weight):
    net, x, reseed = _drawn(backend, seed, n, c, size, k, s, p, width, dropout, spectral, transpose)
    xp = backend.xp

    def g_bar(g):  # the penalty is of each sample's whole input gradient, flattened to a row
        return xp.reshape(penalty(xp.reshape(g, (g.shape[0], -1)), weight)[1], g.shape)

    value = lambda g: float(to_numpy(penalty(g.reshape(g.shape[0], -1), weight)[0]))  # noqa: E731
    analytic, numeric = second_order_check(net, x, value, g_bar, reseed)
    assert_close_grad(analytic, numeric, f"∂{penalty.__name__}/∂θ")


class _ConvNoWeightTerm(InputGradient):
    """Forgets ∂/∂W += im2col(δ̄)ᵀ δ_out in the convolutions."""

    def _convolution(self, i, layer, d_bar, tangent):
        saved = layer.grads["W"] * 1.0
        out = super()._convolution(i, layer, d_bar, tangent)
        layer.grads["W"][...] = saved
        return out


def test_the_check_catches_a_missing_convolution_term(backend):
    net = random_net(backend, conv_critic(2, 5, 3, 1, 1, 3), 11, 0.7)
    x = random_array(13, (3, 5, 5, 2))
    assert conditioning(net, x)[0] > KINK

    def grads(cls):
        grad_input = cls(net)
        g = grad_input.forward(backend.asarray(x))
        net.zero_grad()
        grad_input.backward(g)
        return to_numpy(net.grads).copy()

    right, wrong = grads(InputGradient), grads(_ConvNoWeightTerm)
    assert np.abs(right - wrong).max() > 1e-3


def test_batchnorm2d_is_refused_by_name():
    net = Sequential([Conv2d(1, 2, 3), BatchNorm2d(2), Flatten(), Dense(8, 1)], "numpy")
    with pytest.raises(ValueError, match="layer 1 is BatchNorm2d$"):
        InputGradient(net)
    InputGradient(Sequential([Dense(4, 8), Reshape((2, 2, 2)), ConvTranspose2d(2, 1, 2), Flatten(), Dense(9, 1)],
                             "numpy"))


# -- spectral normalisation of a convolution's weight -----------------------------------------


@GRAD_SETTINGS
@given(seed=SEEDS, n=st.integers(1, 3), c_in=st.integers(1, 3), c_out=st.integers(1, 3), k=st.integers(1, 3),
       s=st.integers(1, 2))
def test_spectral_conv2d_gradients_with_u_fixed(backend, seed, n, c_in, c_out, k, s):
    """Exactly y = conv(x, W/‖Wu‖) + b for the stored u, for W, b and x, behind a layer that passes dx on."""
    net = random_net(backend, [Conv2d(c_in, c_in, 1), SpectralConv2d(c_in, c_out, k, s, k // 2)], seed)
    x = random_array(seed + 2, (n, 5, 4, c_in))
    out = net.forward(backend.asarray(x))
    check_network(net, x, random_array(seed + 3, tuple(out.shape)))


class _SigmaConstant(SpectralConv2d):
    def _add_weight_gradient(self, compute):
        self.grads["W"] += compute(None) / self.sigma


def test_the_check_catches_sigma_treated_as_a_constant(backend):
    net = random_net(backend, [_SigmaConstant(2, 3, 3, 1, 1)], 5)
    with pytest.raises(AssertionError, match="relative error"):
        check_network(net, random_array(6, (2, 4, 4, 2)), random_array(7, (2, 4, 4, 3)))


def test_power_iteration_finds_the_largest_singular_value_of_the_reshaped_weight(backend):
    net = random_net(backend, [SpectralConv2d(3, 4, 3, 2, 1)], 3)
    layer = net.layers[0]
    for _ in range(300):
        power_iterations(net.layers)
    net.forward(backend.asarray(random_array(1, (2, 5, 5, 3))))
    w = to_numpy(layer.params["W"])  # (k·k·c_in, c_out): the transpose of Miyato et al.'s (c_out, c_in·k·k)
    top = np.linalg.svd(w.reshape(9 * 3, 4).T, compute_uv=False)[0]
    assert float(to_numpy(layer.sigma)) == pytest.approx(top, rel=1e-9)
    assert np.linalg.svd(to_numpy(layer.weight), compute_uv=False)[0] == pytest.approx(1.0, rel=1e-9)


def test_convolutions_are_converted_rebuilt_and_keep_u_in_the_state():
    layers = spectral_normalised([Conv2d(1, 4, 4, 2, 1, "he", 0.2), LeakyReLU(0.2), ConvTranspose2d(4, 1, 3)])
    assert [type(layer).__name__ for layer in layers] == ["SpectralConv2d", "LeakyReLU", "ConvTranspose2d"]
    assert type(layer_from_spec(layers[0].spec())) is SpectralConv2d
    state = Sequential(layers, "numpy").state_dict()
    assert state["0.u"].shape == (4, 1)
