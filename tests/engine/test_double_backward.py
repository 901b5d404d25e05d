"""The second-order backward: gradients of functions of ∇ₓD with respect to D's parameters, by central differences.

``InputGradient.backward(ḡ)`` must equal ``∂⟨ḡ, g(θ)⟩/∂θ`` where ``g(θ) = ∇ₓ Σ D(x)`` is what an ordinary
backward pass from ``dy = 1`` returns (itself checked in test_layers.py), and with ``ḡ = ∂P/∂g`` it must
give the gradient of the penalties themselves. Every D parameter is perturbed, biases included (their
exact gradient is zero almost everywhere for piecewise-linear networks, and the differences must agree).
"""

import numpy as np
import pytest
from gradcheck import GRAD_SETTINGS, assert_close_grad, conditioning, numerical_grad, random_array, random_net
from hypothesis import assume, example, given
from hypothesis import strategies as st

from tinygan import BatchNorm, Dense, Dropout, LeakyReLU, Maxout, ReLU, Sequential, Sigmoid, Tanh
from tinygan.backend import to_numpy
from tinygan.engine.double_backward import InputGradient, check_supported
from tinygan.engine.objectives import gp_penalty, r1_penalty
from tinygan.engine.spectral import SpectralDense

SEEDS = st.integers(0, 2**31)
KINK = 1e-3


def _activation(kind, pieces):
    return {"relu": ReLU, "leaky_relu": lambda: LeakyReLU(0.2), "maxout": lambda: Maxout(pieces)}[kind]()


def critic_layers(n_in, widths, kind, pieces=2, dropout=0.0, spectral=False):
    """Dense → activation (→ Dropout) per hidden width, then Dense(·, 1): a discriminator."""
    dense = SpectralDense if spectral else Dense
    layers, width = [], n_in
    for w in widths:
        layers += [dense(width, w * (pieces if kind == "maxout" else 1)), _activation(kind, pieces)]
        if dropout:
            layers.append(Dropout(dropout))
        width = w
    return [*layers, dense(width, 1)]


def _fixed_masks(net, backend, seed):
    """Reseed every Dropout layer before a forward, so each pass draws the same mask."""

    def reseed():
        for layer in net.layers:
            if isinstance(layer, Dropout):
                layer.rng = backend.rng(seed)

    return reseed


def plain_input_gradient(net, x_host, before_forward):
    """``g = ∇ₓ Σ net(x)`` by the ordinary forward and backward passes, as a host float64 array."""
    before_forward()
    out = net.forward(net.backend.asarray(x_host, dtype=net.params.dtype))
    ones = net.backend.asarray(np.ones(tuple(out.shape)), dtype=net.params.dtype)
    return to_numpy(net.backward(ones, need_dparams=False)).astype(np.float64)


def second_order_check(net, x, value_of_g, g_bar_of_g, before_forward):
    """Analytic ``InputGradient.backward`` against central differences of ``θ ↦ value_of_g(g(θ))``."""
    backend = net.backend
    p0 = to_numpy(net.params).astype(np.float64)

    def value(params):
        net.params[...] = backend.asarray(params, dtype=net.params.dtype)
        return value_of_g(plain_input_gradient(net, x, before_forward))

    numeric = numerical_grad(value, p0)
    net.params[...] = backend.asarray(p0, dtype=net.params.dtype)
    grad_input = InputGradient(net)
    before_forward()
    g = grad_input.forward(backend.asarray(x, dtype=net.params.dtype))
    net.zero_grad()
    grad_input.backward(g_bar_of_g(g))
    return to_numpy(net.grads).astype(np.float64), numeric


def _drawn_critic(backend, seed, n, n_in, widths, kind, pieces, dropout, spectral):
    net = random_net(backend, critic_layers(n_in, widths, kind, pieces, dropout, spectral), seed)
    x = random_array(seed + 2, (n, n_in))
    reseed = _fixed_masks(net, backend, seed)
    reseed()
    assume(conditioning(net, x)[0] > KINK)
    return net, x, reseed


CRITICS = dict(
    seed=SEEDS, n=st.integers(1, 5), n_in=st.integers(1, 4), widths=st.lists(st.integers(1, 4), min_size=1, max_size=2),
    kind=st.sampled_from(["relu", "leaky_relu", "maxout"]), pieces=st.integers(2, 3),
    dropout=st.sampled_from([0.0, 0.4]), spectral=st.booleans(),
)


@GRAD_SETTINGS
@given(**CRITICS)
def test_backward_of_the_backward_is_the_gradient_of_a_projection_of_the_input_gradient(
    backend, seed, n, n_in, widths, kind, pieces, dropout, spectral
):
    net, x, reseed = _drawn_critic(backend, seed, n, n_in, widths, kind, pieces, dropout, spectral)
    r = random_array(seed + 5, (n, n_in))
    analytic, numeric = second_order_check(
        net, x, lambda g: float(np.sum(g * r)), lambda g: backend.asarray(r, dtype=g.dtype), reseed
    )
    assert_close_grad(analytic, numeric, "∂⟨R, ∇ₓD⟩/∂θ")


def _penalty_value(penalty, weight):
    return lambda g: float(to_numpy(penalty(np.asarray(g), weight)[0]))


@pytest.mark.parametrize("penalty", [r1_penalty, gp_penalty], ids=["r1", "wgan-gp"])
@GRAD_SETTINGS
@given(**CRITICS, weight=st.floats(0.1, 10.0))
@example(seed=0, n=1, n_in=1, widths=[1], kind="relu", pieces=2, dropout=0.0, spectral=True, weight=1.0)  # all 0
def test_penalty_gradient_with_respect_to_every_parameter(
    backend, penalty, seed, n, n_in, widths, kind, pieces, dropout, spectral, weight
):
    net, x, reseed = _drawn_critic(backend, seed, n, n_in, widths, kind, pieces, dropout, spectral)
    analytic, numeric = second_order_check(
        net, x, _penalty_value(penalty, weight), lambda g: penalty(g, weight)[1], reseed
    )
    assert_close_grad(analytic, numeric, f"∂{penalty.__name__}/∂θ")


# -- the check can fail ------------------------------------------------------------------------


class _NoWeightTerm(InputGradient):
    """Carries δ̄ forward but forgets ∂/∂W += δ̄ᵀ δ_out: treats ∇ₓD as if it did not depend on W."""

    def _dense(self, i, layer, d_bar, tangent):
        saved = layer.grads["W"] * 1.0
        out = super()._dense(i, layer, d_bar, tangent)
        layer.grads["W"][...] = saved
        return out


class _TransposedWeightTerm(InputGradient):
    """Adds δ̄ᵀ δ_out where it belongs, and again (a double count, as a hand derivation may slip)."""

    def _dense(self, i, layer, d_bar, tangent):
        out = super()._dense(i, layer, d_bar, tangent)
        layer.grads["W"] += self.ops.matmul(d_bar.T, self.seeds[i])
        return out


class _TangentIgnoresMask(InputGradient):
    """Carries δ̄ through activations as if they were the identity."""

    def backward(self, g_bar):
        saved = {i: type(layer) for i, layer in enumerate(self.net.layers)}
        for layer in self.net.layers:
            if isinstance(layer, (ReLU, LeakyReLU)):
                layer.backward = lambda dy, need_dx=True, need_dparams=True: dy
        try:
            super().backward(g_bar)
        finally:
            for i, layer in enumerate(self.net.layers):
                if saved[i] in (ReLU, LeakyReLU):
                    del layer.backward


@pytest.mark.parametrize("wrong", [_NoWeightTerm, _TransposedWeightTerm, _TangentIgnoresMask],
                         ids=["no-weight-term", "double-weight-term", "tangent-ignores-mask"])
def test_the_check_catches_a_wrong_second_order_backward(backend, wrong):
    net = random_net(backend, critic_layers(3, [4, 4], "relu"), 11)
    x = random_array(13, (5, 3))
    assert conditioning(net, x)[0] > KINK
    analytic, numeric = _check_with(wrong, net, x)
    with pytest.raises(AssertionError, match="relative error"):
        assert_close_grad(analytic, numeric, "wrong second-order backward")


def _check_with(cls, net, x):
    backend = net.backend
    p0 = to_numpy(net.params).astype(np.float64)

    def value(params):
        net.params[...] = backend.asarray(params, dtype=net.params.dtype)
        return float(to_numpy(r1_penalty(np.asarray(plain_input_gradient(net, x, lambda: None)), 1.0)[0]))

    numeric = numerical_grad(value, p0)
    net.params[...] = backend.asarray(p0, dtype=net.params.dtype)
    grad_input = cls(net)
    g = grad_input.forward(backend.asarray(x, dtype=net.params.dtype))
    net.zero_grad()
    grad_input.backward(r1_penalty(g, 1.0)[1])
    return to_numpy(net.grads).astype(np.float64), numeric


def test_the_correct_backward_passes_the_same_check(backend):
    net = random_net(backend, critic_layers(3, [4, 4], "relu"), 11)
    analytic, numeric = _check_with(InputGradient, net, random_array(13, (5, 3)))
    assert_close_grad(analytic, numeric, "R1 gradient")
    assert np.abs(analytic).max() > 1e-2  # a check of zeros would prove nothing


# -- what it refuses ---------------------------------------------------------------------------


@pytest.mark.parametrize("layer", [BatchNorm(4), Tanh(), Sigmoid()], ids=lambda layer: type(layer).__name__)
def test_layers_without_a_second_order_backward_are_refused_by_name(layer):
    net = Sequential([Dense(3, 4), layer, Dense(4, 1)], "numpy")
    with pytest.raises(ValueError, match=f"a penalised critic needs .* layer 1 is {type(layer).__name__}$"):
        InputGradient(net)
    check_supported([Dense(3, 4), ReLU(), Dropout(0.2), Maxout(2), LeakyReLU(), SpectralDense(2, 1)])
