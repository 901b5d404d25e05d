"""Layers: finite-difference gradient checks for every layer, the backward contract, forward values."""

import json
import math
import warnings

import numpy as np
import pytest
from gradcheck import (
    GRAD_SETTINGS,
    assert_backward_accumulates,
    assert_skips_param_grads,
    check_network,
    conditioning,
    loss_noise,
    network_grads,
    random_array,
    random_net,
    rel_error,
)
from hypothesis import assume, example, given
from hypothesis import strategies as st

from tinygan import BatchNorm, Dense, Dropout, Layer, LeakyReLU, Maxout, ReLU, Sequential, Sigmoid, Tanh
from tinygan.backend import to_numpy
from tinygan.engine.layers import layer_from_spec

SEEDS = st.integers(0, 2**31)
BATCH = st.integers(1, 6)
WIDTH = st.integers(1, 5)
KINK = 1e-3  # (Leaky)ReLU inputs closer to 0 than this are on the kink: no finite-difference check there


def _x_and_r(seed, n, n_in, n_out, scale=1.0):
    return random_array(seed + 2, (n, n_in), scale), random_array(seed + 3, (n, n_out))


def _away_from_zero(seed, shape):
    """Values with 0.1 <= |x| < 2.1 and random signs: never near the ReLU kink."""
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.1, size=shape)


ACTIVATIONS = {
    "relu": ReLU,
    "leaky_relu": lambda: LeakyReLU(0.2),
    "leaky_relu_0.01": lambda: LeakyReLU(0.01),
    "tanh": Tanh,
    "sigmoid": Sigmoid,
}


# --------------------------------------------------------------------------------------------
# Gradient checks, layer by layer
# --------------------------------------------------------------------------------------------


@GRAD_SETTINGS
@given(seed=SEEDS, n=BATCH, n_in=WIDTH, n_out=WIDTH)
def test_dense_gradients(backend, seed, n, n_in, n_out):
    net = random_net(backend, [Dense(n_in, n_out)], seed)
    x, r = _x_and_r(seed, n, n_in, n_out)
    check_network(net, x, r)


@pytest.mark.parametrize("name", ACTIVATIONS)
@GRAD_SETTINGS
@given(seed=SEEDS, n=BATCH, width=WIDTH)
def test_activation_gradients_alone(backend, name, seed, n, width):
    net = random_net(backend, [ACTIVATIONS[name]()], seed)
    x = _away_from_zero(seed + 2, (n, width))
    r = random_array(seed + 3, (n, width))
    check_network(net, x, r)


@pytest.mark.parametrize("name", ACTIVATIONS)
@GRAD_SETTINGS
@given(seed=SEEDS, n=BATCH, n_in=WIDTH, n_out=WIDTH)
def test_activation_gradients_after_dense(backend, name, seed, n, n_in, n_out):
    net = random_net(backend, [Dense(n_in, n_out), ACTIVATIONS[name]()], seed)
    x, r = _x_and_r(seed, n, n_in, n_out)
    assume(conditioning(net, x)[0] > KINK)
    check_network(net, x, r)


@GRAD_SETTINGS
@given(seed=SEEDS, n=BATCH, slope=st.floats(0.01, 0.5))
def test_leaky_relu_gradient_any_slope(backend, seed, n, slope):
    net = random_net(backend, [Dense(3, 4), LeakyReLU(slope)], seed)
    x, r = _x_and_r(seed, n, 3, 4)
    assume(conditioning(net, x)[0] > KINK)
    check_network(net, x, r)


@GRAD_SETTINGS
@given(seed=SEEDS, n=BATCH, units=WIDTH, pieces=st.integers(1, 4))
def test_maxout_gradients_alone(backend, seed, n, units, pieces):
    net = random_net(backend, [Maxout(pieces)], seed)
    x = random_array(seed + 2, (n, units * pieces))
    assume(conditioning(net, x)[0] > KINK)
    check_network(net, x, random_array(seed + 3, (n, units)))


@GRAD_SETTINGS
@given(seed=SEEDS, n=BATCH, n_in=WIDTH, units=WIDTH, pieces=st.integers(2, 4))
def test_maxout_gradients_after_dense(backend, seed, n, n_in, units, pieces):
    net = random_net(backend, [Dense(n_in, units * pieces), Maxout(pieces)], seed)
    x, r = _x_and_r(seed, n, n_in, units)
    assume(conditioning(net, x)[0] > KINK)
    check_network(net, x, r)


def _fixed_mask(backend, layer, seed):
    """Reseed the Dropout layer's generator before each forward, so every pass draws the same mask."""

    def reseed():
        layer.rng = backend.rng(seed)

    return reseed


@GRAD_SETTINGS
@given(seed=SEEDS, n=BATCH, n_in=WIDTH, n_out=WIDTH, p=st.floats(0.1, 0.7))
def test_dropout_gradients_fixed_mask(backend, seed, n, n_in, n_out, p):
    drop = Dropout(p)
    net = random_net(backend, [Dense(n_in, n_out), drop], seed)
    x, r = _x_and_r(seed, n, n_in, n_out)
    check_network(net, x, r, before_forward=_fixed_mask(backend, drop, seed))


@GRAD_SETTINGS
@given(seed=SEEDS, n=BATCH, width=WIDTH, p=st.floats(0.1, 0.7))
def test_dropout_gradients_alone(backend, seed, n, width, p):
    drop = Dropout(p)
    net = random_net(backend, [drop], seed)
    x, r = _x_and_r(seed, n, width, width)
    check_network(net, x, r, before_forward=_fixed_mask(backend, drop, seed))


@GRAD_SETTINGS
@given(seed=SEEDS, n=st.integers(2, 6), width=WIDTH)
def test_batchnorm_train_gradients_alone(backend, seed, n, width):
    net = random_net(backend, [BatchNorm(width)], seed)
    x, r = _x_and_r(seed, n, width, width)
    assume(conditioning(net, x)[1] > 1e-2)
    check_network(net, x, r)


@GRAD_SETTINGS
@given(seed=SEEDS, n=st.integers(2, 6), n_in=WIDTH, n_out=WIDTH, momentum=st.floats(0.01, 0.9))
@example(seed=9018, n=2, n_in=5, n_out=3, momentum=0.5)  # a gradient of norm 3e-3 beside the loss's rounding
def test_batchnorm_train_gradients_after_dense(backend, seed, n, n_in, n_out, momentum):
    net = random_net(backend, [Dense(n_in, n_out), BatchNorm(n_out, momentum=momentum)], seed)
    x, r = _x_and_r(seed, n, n_in, n_out)
    assume(conditioning(net, x)[1] > 1e-2)
    check_network(net, x, r)


def _random_running_stats(backend, bn, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(bn.running_mean.shape)
    bn.running_mean[...] = backend.asarray(rng.normal(size=shape), dtype=bn.running_mean.dtype)
    bn.running_var[...] = backend.asarray(rng.uniform(0.2, 3.0, size=shape), dtype=bn.running_var.dtype)


@GRAD_SETTINGS
@given(seed=SEEDS, n=BATCH, n_in=WIDTH, n_out=WIDTH)
def test_batchnorm_eval_gradients(backend, seed, n, n_in, n_out):
    alone = random_net(backend, [BatchNorm(n_out)], seed).eval()
    _random_running_stats(backend, alone.layers[0], seed)
    x, r = _x_and_r(seed, n, n_out, n_out)
    check_network(alone, x, r)  # n = 1 is fine in eval mode: no batch statistics

    net = random_net(backend, [Dense(n_in, n_out), BatchNorm(n_out)], seed).eval()
    _random_running_stats(backend, net.layers[1], seed)
    x, r = _x_and_r(seed, n, n_in, n_out)
    check_network(net, x, r)


# --------------------------------------------------------------------------------------------
# The checker catches wrong gradients
# --------------------------------------------------------------------------------------------


class _DenseWrongDx(Dense):
    def backward(self, dy, need_dx=True, need_dparams=True):
        dx = super().backward(dy, need_dx, need_dparams)
        return None if dx is None else 1.01 * dx


class _DenseWrongDb(Dense):
    def backward(self, dy, need_dx=True, need_dparams=True):
        dx = super().backward(dy, need_dx, need_dparams)
        if need_dparams:
            self.grads["b"] += self.xp.sum(dy, axis=0)  # counted twice
        return dx


class _ReLUNoMask(ReLU):
    def backward(self, dy, need_dx=True, need_dparams=True):
        return dy if need_dx else None


class _MaxoutToAllPieces(Maxout):
    def backward(self, dy, need_dx=True, need_dparams=True):
        dx = self.xp.broadcast_to(dy[..., None], (*dy.shape, self.pieces))
        return self.xp.reshape(dx, (dy.shape[0], -1)) if need_dx else None


class _TanhWrongDerivative(Tanh):
    def backward(self, dy, need_dx=True, need_dparams=True):
        return dy * (1.0 - self.y) if need_dx else None


class _BatchNormNoMeanVarTerms(BatchNorm):
    """Training-mode backward that forgets that μ_B and σ²_B depend on x (the eval-mode formula)."""

    def backward(self, dy, need_dx=True, need_dparams=True):
        dx = super().backward(dy, need_dx, need_dparams)
        return None if dx is None else dy * (self.params["gamma"] * self.inv_std)


@pytest.mark.parametrize(
    "layers",
    [
        lambda: [_DenseWrongDx(3, 4)],
        lambda: [_DenseWrongDb(3, 4)],
        lambda: [Dense(3, 4), _ReLUNoMask()],
        lambda: [Dense(3, 4), _TanhWrongDerivative()],
        lambda: [Dense(3, 8), _MaxoutToAllPieces(2)],
        lambda: [Dense(3, 4), _BatchNormNoMeanVarTerms(4)],
    ],
    ids=["dense-dx", "dense-db", "relu-no-mask", "tanh-derivative", "maxout-all-pieces", "batchnorm-train-dx"],
)
def test_checker_catches_wrong_gradient(backend, layers):
    net = random_net(backend, layers(), 7)
    x, r = _x_and_r(7, 5, 3, 4)
    with pytest.raises(AssertionError, match="relative error"):
        check_network(net, x, r)


def test_wrong_input_gradient_hides_when_checked_alone_on_params(backend):
    """Why every layer is also checked behind a Dense: BatchNorm's own γ/β gradients are right even
    with a wrong dx, but the Dense weights in front receive that wrong dx."""
    alone = random_net(backend, [_BatchNormNoMeanVarTerms(4)], 3)
    x, r = _x_and_r(3, 5, 4, 4)
    g = network_grads(alone, x, r)
    assert rel_error(g["params"], g["params_fd"], g["params_fd"].allowance) < 1e-6  # parameters alone look fine
    assert rel_error(g["x"], g["x_fd"]) > 1e-3

    behind = random_net(backend, [Dense(3, 4), _BatchNormNoMeanVarTerms(4)], 3)
    x, r = _x_and_r(3, 5, 3, 4)
    g = network_grads(behind, x, r)
    assert rel_error(g["params"], g["params_fd"]) > 1e-3  # the Dense in front exposes it


def test_a_small_wrong_gradient_fails_beside_the_rounding_allowance(backend):
    """The allowance admits rounding, not error: on the draw whose input gradient has a norm of 3e-3
    (pinned above), that gradient is right to 1e-8, yet 1.0001 times it fails."""
    net = random_net(backend, [Dense(5, 3), BatchNorm(3, momentum=0.5)], 9018)
    x, r = _x_and_r(9018, 2, 5, 3)
    g = network_grads(net, x, r)
    assert rel_error(g["x"], g["x_fd"], g["x_fd"].allowance) == 0.0
    assert rel_error(1.0001 * g["x"], g["x_fd"], g["x_fd"].allowance) > 1e-6


def test_loss_noise_measures_the_noise_it_is_given():
    """ECnoise on a smooth function plus independent noise of known deviation finds that deviation."""
    for sigma in (1e-13, 1e-10):
        def noisy(x, sigma=sigma):
            seed = int.from_bytes(np.asarray(x, np.float64).tobytes()[-8:], "little")
            return float(np.sum(np.sin(x))) + sigma * np.random.default_rng(seed).standard_normal()

        estimates = [loss_noise(noisy, random_array(s, (7,)), seed=s) for s in range(50)]
        assert 0.7 * sigma < np.median(estimates) < 1.4 * sigma


def test_rel_error():
    a = np.array([1.0, -2.0, 3.0])
    assert rel_error(a, a) == 0.0
    assert rel_error(a, a * (1 + 1e-9)) < 1e-8
    assert rel_error(a, a + np.array([0.0, 0.0, 1e-3])) > 1e-4
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    with pytest.raises(AssertionError):
        rel_error(np.zeros(3), np.zeros(4))


# --------------------------------------------------------------------------------------------
# The backward contract: need_dx / need_dparams, accumulation, dy untouched
# --------------------------------------------------------------------------------------------

LAYER_CASES = {
    "dense": lambda: Dense(4, 4),
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "dropout": lambda: Dropout(0.5),
    "dropout-eval": lambda: Dropout(0.5),
    "batchnorm": lambda: BatchNorm(4),
    "batchnorm-eval": lambda: BatchNorm(4),
}


def _forwarded_layer(backend, name, seed=0):
    """A float64 layer of LAYER_CASES inside a network, after one forward of a (5, 4) batch."""
    net = random_net(backend, [LAYER_CASES[name]()], seed)
    if name.endswith("-eval"):
        net.eval()
    layer = net.layers[0]
    x = backend.asarray(random_array(seed + 2, (5, 4)))
    layer.forward(x)
    return net, layer


@pytest.mark.parametrize("name", LAYER_CASES)
def test_need_dx_false_returns_none(backend, name):
    net, layer = _forwarded_layer(backend, name)
    dy = backend.asarray(random_array(1, (5, 4)))
    assert layer.backward(dy, need_dx=False) is None
    assert layer.backward(dy, need_dx=False, need_dparams=False) is None


@pytest.mark.parametrize("name", LAYER_CASES)
def test_need_dparams_false_leaves_grads_untouched(backend, name):
    net, layer = _forwarded_layer(backend, name)
    assert_skips_param_grads(backend, net, layer.backward, backend.asarray(random_array(1, (5, 4))))


@pytest.mark.parametrize("name", LAYER_CASES)
def test_backward_accumulates_and_never_writes_dy(backend, name):
    net, layer = _forwarded_layer(backend, name)
    assert_backward_accumulates(backend, net, layer.backward, (5, 4))


@pytest.mark.parametrize("name", LAYER_CASES)
def test_outputs_survive_later_passes(backend, name):
    """forward and backward return arrays of their own: a caller holding y or dx (a GAN holds
    G's output while D runs) must not see it change when the layer runs again."""
    net, layer = _forwarded_layer(backend, name)
    x1, x2 = backend.asarray(random_array(11, (5, 4))), backend.asarray(random_array(12, (5, 4)))
    dy1, dy2 = backend.asarray(random_array(13, (5, 4))), backend.asarray(random_array(14, (5, 4)))
    y1 = layer.forward(x1)
    dx1 = layer.backward(dy1)
    y1_host, dx1_host = to_numpy(y1).copy(), to_numpy(dx1).copy()
    layer.forward(x2)
    layer.backward(dy2)
    np.testing.assert_array_equal(to_numpy(y1), y1_host)
    np.testing.assert_array_equal(to_numpy(dx1), dx1_host)
    np.testing.assert_array_equal(to_numpy(x1), random_array(11, (5, 4)))  # inputs are never written


@pytest.mark.parametrize("name", [n for n in LAYER_CASES if n != "dropout"])  # each forward draws a new mask
def test_backward_belongs_to_the_latest_forward(backend, name):
    """A layer keeps only its latest forward's caches: forward(x1), forward(x2), backward(dy) gives
    the gradients at x2, exactly as forward(x2), backward(dy) alone does."""
    x1, x2 = (backend.asarray(random_array(s, (5, 4))) for s in (21, 22))
    dy = backend.asarray(random_array(23, (5, 4)))
    results = []
    for inputs in ((x1, x2), (x2,)):
        net, layer = _forwarded_layer(backend, name, seed=3)
        for x in inputs:
            layer.forward(x)
        net.zero_grad()
        results.append((to_numpy(layer.backward(dy)).copy(), to_numpy(net.grads).copy()))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


SPEC_CASES = [Dense(3, 5, "he", 0.2), ReLU(), LeakyReLU(0.1), Maxout(3), Tanh(), Sigmoid(), Dropout(0.25),
              BatchNorm(7, momentum=0.2, eps=1e-3)]


@pytest.mark.parametrize("layer", SPEC_CASES, ids=lambda layer: type(layer).__name__)
def test_spec_rebuilds_every_layer(layer):
    rebuilt = layer_from_spec(layer.spec())
    assert type(rebuilt) is type(layer) and rebuilt.spec() == layer.spec()
    assert json.loads(json.dumps(layer.spec())) == layer.spec()


class Scale(Layer):
    """A user's layer: ``y = factor · x``; its constructor argument is stored under its own name."""

    def __init__(self, factor: float = 2.0) -> None:
        self.factor = factor

    def forward(self, x):
        return x * self.factor

    def backward(self, dy, need_dx=True, need_dparams=True):
        return dy * self.factor if need_dx else None


class Forgetful(Layer):
    """A user's layer that does not keep its constructor argument: it cannot be described."""

    def __init__(self, factor: float = 2.0) -> None:
        self.k = factor


def test_user_layers_are_rebuilt_by_name_and_undescribable_ones_are_named():
    assert type(layer_from_spec({"type": "Scale", "factor": 3.0})) is Scale
    with pytest.raises(TypeError, match="layer Forgetful cannot describe itself: .*factor"):
        Forgetful().spec()
    with pytest.raises(ValueError, match="unknown layer type 'Nope'.*import the module"):
        layer_from_spec({"type": "Nope"})


# --------------------------------------------------------------------------------------------
# Forward values
# --------------------------------------------------------------------------------------------


def _forward(backend, layer, x_host, dtype="float64"):
    net = Sequential([layer], backend, dtype=dtype)
    return to_numpy(net.forward(backend.asarray(x_host, dtype=backend.dtype(dtype))))


def test_activation_forward_values(backend):
    x = np.array([[-3.0, -0.5, 0.0, 0.5, 3.0]])
    np.testing.assert_array_equal(_forward(backend, ReLU(), x), np.maximum(x, 0))
    np.testing.assert_allclose(_forward(backend, LeakyReLU(0.1), x), np.where(x > 0, x, 0.1 * x), rtol=1e-15)
    np.testing.assert_allclose(_forward(backend, Tanh(), x), np.tanh(x), rtol=1e-15)
    np.testing.assert_allclose(_forward(backend, Sigmoid(), x), 1 / (1 + np.exp(-x)), rtol=1e-15)


def test_maxout_forward_value_and_routing(backend):
    x = np.array([[1.0, 5.0, -2.0, 0.5, 0.25, 3.0], [-1.0, -3.0, -2.0, 7.0, 7.0, 1.0]])
    net = Sequential([Maxout(3)], backend, dtype="float64")
    y = net.forward(backend.asarray(x))
    np.testing.assert_array_equal(to_numpy(y), [[5.0, 3.0], [-1.0, 7.0]])
    dx = net.backward(backend.asarray(np.array([[10.0, 20.0], [30.0, 40.0]])))
    # each unit's gradient goes to its winning piece only (the first of a tie)
    np.testing.assert_array_equal(to_numpy(dx), [[0, 10, 0, 0, 0, 20], [30, 0, 0, 40, 0, 0]])


def test_maxout_contract(backend):
    net = random_net(backend, [Maxout(2)], 0)
    layer = net.layers[0]
    x1, x2 = backend.asarray(random_array(11, (5, 4))), backend.asarray(random_array(12, (5, 4)))
    dy = backend.asarray(random_array(13, (5, 2)))
    y1 = layer.forward(x1)
    dx1 = layer.backward(dy)
    y1_host, dx1_host = to_numpy(y1).copy(), to_numpy(dx1).copy()
    assert layer.backward(dy, need_dx=False) is None
    layer.forward(x2)
    layer.backward(backend.asarray(random_array(14, (5, 2))))
    np.testing.assert_array_equal(to_numpy(y1), y1_host)  # outputs survive later passes
    np.testing.assert_array_equal(to_numpy(dx1), dx1_host)
    np.testing.assert_array_equal(to_numpy(dy), random_array(13, (5, 2)))  # dy is never written


def test_maxout_rejects_bad_shapes():
    with pytest.raises(ValueError, match="pieces must be >= 1"):
        Maxout(0)
    net = Sequential([Maxout(3)], "numpy", dtype="float64")
    with pytest.raises(ValueError, match="multiple of 3 inputs, got 4"):
        net.forward(np.zeros((2, 4)))


def test_dense_forward_value(backend):
    net = random_net(backend, [Dense(3, 2)], 1)
    w, b = to_numpy(net.layers[0].params["W"]), to_numpy(net.layers[0].params["b"])
    x = random_array(5, (4, 3))
    np.testing.assert_allclose(to_numpy(net.forward(backend.asarray(x))), x @ w + b, rtol=1e-14)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_extreme_inputs_no_overflow(backend, dtype):
    x = np.array([[-1e30, -1e4, -100.0, 0.0, 100.0, 1e4, 1e30]])
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        net = Sequential([Sigmoid()], backend, dtype=dtype)
        y = net.forward(backend.asarray(x, dtype=backend.dtype(dtype)))
        dx = net.backward(backend.xp.ones_like(y))
        y, dx = to_numpy(y), to_numpy(dx)
    assert y.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    assert np.all((y >= 0) & (y <= 1))
    np.testing.assert_array_equal(y[0, [0, 1, 5, 6]], [0.0, 0.0, 1.0, 1.0])
    assert y[0, 3] == 0.5
    np.testing.assert_array_equal(dx[0, [0, 1, 5, 6]], 0.0)


def test_tanh_extreme_inputs(backend):
    x = np.array([[-1e30, -1e4, 1e4, 1e30]], dtype=np.float32)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        y = _forward(backend, Tanh(), x, "float32")
    np.testing.assert_array_equal(y, [[-1.0, -1.0, 1.0, 1.0]])


def test_dropout_train_and_eval(backend):
    p = 0.3
    drop = Dropout(p)
    net = Sequential([drop], backend, dtype="float64", seed=0)
    x = np.ones((200, 50))
    y = to_numpy(net.forward(backend.asarray(x)))
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / (1 - p), rtol=1e-15)
    assert abs(1 - kept.mean() - p) < 0.02  # 10 000 draws: the dropped fraction is p within 0.02
    dx = to_numpy(net.backward(backend.asarray(np.full((200, 50), 2.0))))
    np.testing.assert_allclose(dx, 2.0 * y, rtol=1e-15)  # the same mask scales the gradient

    net.eval()
    y_eval = to_numpy(net.forward(backend.asarray(x)))
    np.testing.assert_array_equal(y_eval, x)
    np.testing.assert_array_equal(to_numpy(net.backward(backend.asarray(x))), x)


def test_dropout_masks_differ_between_passes(backend):
    net = Sequential([Dropout(0.5)], backend, dtype="float64", seed=0)
    x = backend.asarray(np.ones((10, 10)))
    assert not np.array_equal(to_numpy(net.forward(x)), to_numpy(net.forward(x)))


def test_dropout_zero_p_is_identity(backend):
    x = random_array(0, (3, 4))
    np.testing.assert_array_equal(_forward(backend, Dropout(0.0), x), x)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_rejects_bad_p(p):
    with pytest.raises(ValueError, match="Dropout p"):
        Dropout(p)


def test_dense_rejects_unknown_init():
    with pytest.raises(ValueError, match="'xavier'"):
        Dense(2, 3, init="xavier")


@pytest.mark.parametrize(
    ("init", "leak", "expected"),
    [
        ("he", 0.0, math.sqrt(2 / 400)),
        ("he", 0.2, math.sqrt(2 / (1.04 * 400))),
        ("glorot", 0.0, math.sqrt(2 / 700)),
    ],
)
def test_dense_initialisation_scale(backend, init, leak, expected):
    net = Sequential([Dense(400, 300, init, leak)], backend, dtype="float64", seed=0)
    w = to_numpy(net.layers[0].params["W"])
    assert abs(w.std() / expected - 1) < 0.01  # 120 000 samples: std within 1 % (5 standard errors)
    assert abs(w.mean()) < 0.02 * expected
    np.testing.assert_array_equal(to_numpy(net.layers[0].params["b"]), 0.0)


def test_batchnorm_forward_train_and_eval(backend):
    net = random_net(backend, [BatchNorm(3, eps=1e-5)], 0)
    bn = net.layers[0]
    gamma, beta = to_numpy(bn.params["gamma"]), to_numpy(bn.params["beta"])
    x = random_array(4, (6, 3), 2.0) + 5.0
    y = to_numpy(net.forward(backend.asarray(x)))
    expected = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5) * gamma + beta
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)

    net.eval()
    mean, var = to_numpy(bn.running_mean).copy(), to_numpy(bn.running_var).copy()
    y = to_numpy(net.forward(backend.asarray(x)))
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5) * gamma + beta, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(to_numpy(bn.running_mean), mean)  # eval leaves the statistics alone
    np.testing.assert_array_equal(to_numpy(bn.running_var), var)
