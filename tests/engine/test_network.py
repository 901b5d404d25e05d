"""Sequential and mlp(): whole-network gradient checks, flat buffers, modes, state dicts, mlp() arguments."""

import numpy as np
import pytest
from gradcheck import (
    GRAD_SETTINGS,
    assert_backward_accumulates,
    assert_close_grad,
    assert_skips_param_grads,
    check_network,
    conditioning,
    numerical_grad,
    random_array,
    random_net,
)
from hypothesis import assume, given
from hypothesis import strategies as st

from tinygan import (
    BatchNorm,
    Dense,
    Dropout,
    LeakyReLU,
    Maxout,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    bce_with_logits,
    mlp,
)
from tinygan.backend import to_numpy
from tinygan.engine.network import make_activation

KINK = 1e-3
# Batches of 3 or more: for a batch of two, training-mode BatchNorm maps each column to about ±1 whatever
# the input, so its input gradient is O(eps) and too small for finite differences to resolve inside a
# deep network (test_layers checks BatchNorm alone with batches of two).
BATCH = st.integers(3, 6)


@st.composite
def mlp_configs(draw, batchnorm=None, dropout=False, n_sizes=(2, 4)):
    """Arguments for mlp(): 2-4 sizes of width 1-5, any activations, BatchNorm flags per hidden block."""
    sizes = draw(st.lists(st.integers(1, 5), min_size=n_sizes[0], max_size=n_sizes[1]))
    n_hidden = len(sizes) - 2
    flags = batchnorm
    if flags is None:
        flags = draw(st.lists(st.booleans(), min_size=n_hidden, max_size=n_hidden))
    return {
        "sizes": sizes,
        "activation": draw(st.sampled_from(["relu", "leaky_relu", "maxout", "tanh", "sigmoid"])),
        "out_activation": draw(st.sampled_from([None, "tanh", "sigmoid"])),
        "batchnorm": flags,
        "leak": draw(st.sampled_from([0.2, 0.01, 0.3])),
        "bn_momentum": draw(st.sampled_from([0.1, 0.5])),
        "dropout": draw(st.sampled_from([0.25, 0.5])) if dropout else 0.0,
        "pieces": draw(st.integers(1, 3)),
    }


def _set_random_running_stats(backend, net, seed):
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if isinstance(layer, BatchNorm):
            shape = tuple(layer.running_mean.shape)
            layer.running_mean[...] = backend.asarray(rng.normal(size=shape))
            layer.running_var[...] = backend.asarray(rng.uniform(0.2, 3.0, size=shape))


def _reseed_dropout(backend, net, seed):
    dropouts = [layer for layer in net.layers if isinstance(layer, Dropout)]

    def reseed():
        rng = backend.rng(seed)
        for layer in dropouts:
            layer.rng = rng

    return reseed


def _check_mlp(backend, config, seed, n, training):
    net = random_net(backend, mlp(**config), seed)
    if not training:
        net.eval()
        _set_random_running_stats(backend, net, seed)
    x = random_array(seed + 2, (n, config["sizes"][0]))
    r = random_array(seed + 3, (n, config["sizes"][-1]))
    reseed = _reseed_dropout(backend, net, seed)
    reseed()
    kink, var = conditioning(net, x)
    assume(kink > KINK and var > 1e-2)
    check_network(net, x, r, before_forward=reseed)


# --------------------------------------------------------------------------------------------
# Whole-network gradient checks
# --------------------------------------------------------------------------------------------


@GRAD_SETTINGS
@given(config=mlp_configs(), seed=st.integers(0, 2**31), n=BATCH, training=st.booleans())
def test_mlp_gradients(backend, config, seed, n, training):
    _check_mlp(backend, config, seed, n, training)


@GRAD_SETTINGS
@given(
    config=mlp_configs(batchnorm=[True, True], n_sizes=(4, 4)),
    seed=st.integers(0, 2**31),
    n=BATCH,
    training=st.booleans(),
)
def test_mlp_gradients_all_batchnorm(backend, config, seed, n, training):
    _check_mlp(backend, config, seed, n, training)


@GRAD_SETTINGS
@given(config=mlp_configs(dropout=True), seed=st.integers(0, 2**31), n=BATCH)
def test_mlp_gradients_with_dropout(backend, config, seed, n):
    _check_mlp(backend, config, seed, n, training=True)


@pytest.mark.parametrize(
    ("activation", "out_activation"),
    [("leaky_relu", "tanh"), ("relu", "sigmoid"), ("leaky_relu", None), ("tanh", "sigmoid"), ("maxout", None)],
)
def test_gan_shaped_mlp_gradients(backend, activation, out_activation):
    """The shapes a GAN uses: BatchNorm hidden blocks (a generator) and a plain discriminator."""
    config = {"sizes": [4, 6, 5, 3], "activation": activation, "out_activation": out_activation}
    for batchnorm in (True, False):
        net = random_net(backend, mlp(**config, batchnorm=batchnorm), 11)
        x, r = random_array(12, (5, 4)), random_array(13, (5, 3))
        assert conditioning(net, x)[0] > KINK
        check_network(net, x, r)


@GRAD_SETTINGS
@given(seed=st.integers(0, 2**31), n=BATCH, target=st.sampled_from([0.0, 1.0, 0.9]))
def test_network_through_bce_loss(backend, seed, n, target):
    """A discriminator step end to end: L = bce(net(x), target), backward from the loss's gradient."""
    net = random_net(backend, mlp([3, 5, 4, 1], batchnorm=[True, False]), seed)
    x = random_array(seed + 2, (n, 3))
    kink, var = conditioning(net, x)
    assume(kink > KINK and var > 1e-2)
    p0 = to_numpy(net.params).copy()

    def loss_at(params, x_host):
        net.params[...] = backend.asarray(params)
        return float(to_numpy(bce_with_logits(net.forward(backend.asarray(x_host)), target)[0]))

    loss_at(p0, x)
    _, dlogits = bce_with_logits(net.forward(backend.asarray(x)), target)
    net.zero_grad()
    dx = net.backward(dlogits)
    assert_close_grad(to_numpy(net.grads), numerical_grad(lambda p: loss_at(p, x), p0), "parameter gradient")
    assert_close_grad(to_numpy(dx), numerical_grad(lambda xx: loss_at(p0, xx), x), "input gradient")


def test_network_checker_catches_wrong_layer(backend):
    class WrongLeakyReLU(LeakyReLU):
        def backward(self, dy, need_dx=True, need_dparams=True):
            return self.xp.where(self.factor == 1.0, dy, 0.0) if need_dx else None  # forgets the slope

    layers = mlp([3, 4, 4, 2], batchnorm=True)
    layers[2] = WrongLeakyReLU(0.2)
    net = random_net(backend, layers, 5)
    x, r = random_array(6, (5, 3)), random_array(7, (5, 2))
    with pytest.raises(AssertionError, match="relative error"):
        check_network(net, x, r)


# --------------------------------------------------------------------------------------------
# Backward contract at network level
# --------------------------------------------------------------------------------------------


def _forwarded_net(backend, seed=0):
    net = random_net(backend, mlp([3, 5, 4, 2], batchnorm=True, out_activation="tanh"), seed)
    net.forward(backend.asarray(random_array(seed + 2, (6, 3))))
    return net


def test_network_need_dx_false(backend):
    net = _forwarded_net(backend)
    dy = backend.asarray(random_array(1, (6, 2)))
    net.zero_grad()
    full_dx = net.backward(dy)
    full_grads = to_numpy(net.grads).copy()
    net.zero_grad()
    assert net.backward(dy, need_dx=False) is None
    np.testing.assert_array_equal(to_numpy(net.grads), full_grads)  # parameters still get gradients
    assert tuple(full_dx.shape) == (6, 3)


def test_network_need_dparams_false(backend):
    net = _forwarded_net(backend)
    assert_skips_param_grads(backend, net, net.backward, backend.asarray(random_array(1, (6, 2))))


def test_network_gradients_accumulate_and_dy_untouched(backend):
    net = _forwarded_net(backend)
    assert_backward_accumulates(backend, net, net.backward, (6, 2))


def test_zero_grad(backend):
    net = _forwarded_net(backend)
    net.backward(backend.asarray(random_array(1, (6, 2))))
    assert np.any(to_numpy(net.grads) != 0)
    grads = net.grads
    net.zero_grad()
    assert net.grads is grads  # filled in place: the layers' views stay valid
    np.testing.assert_array_equal(to_numpy(net.grads), 0.0)
    for layer in net.layers:
        for g in getattr(layer, "grads", {}).values():
            np.testing.assert_array_equal(to_numpy(g), 0.0)


def test_start_gradients_writes_then_adds_without_zeroing(backend):
    """After start_gradients the first backward writes each gradient over whatever the buffer held
    (no fill, no extra pass), the second adds; the results equal zero_grad's, whatever the garbage."""
    dy1, dy2 = (backend.asarray(random_array(s, (6, 2))) for s in (1, 2))
    expected = []
    for dys in ((dy1,), (dy1, dy2)):
        net = _forwarded_net(backend)
        net.zero_grad()
        for dy in dys:
            net.backward(dy)
        expected.append(to_numpy(net.grads).copy())
    for dys, want in zip(((dy1,), (dy1, dy2)), expected, strict=True):
        net = _forwarded_net(backend)
        net.grads[...] = backend.asarray(random_array(7, (net.n_params,)) * 1e6)  # stale values
        net.start_gradients()
        for dy in dys:
            net.backward(dy)
        np.testing.assert_array_equal(to_numpy(net.grads), want)


class _AddsOnly(Dense):
    """A user's layer with a backward of its own that adds (and says nothing about writing): it does not
    inherit Dense's ``writes_first``, so start_gradients zeroes its part."""

    def backward(self, dy, need_dx=True, need_dparams=True):
        if need_dparams:
            self.grads["W"] += self.x.T @ dy
            self.grads["b"] += self.xp.sum(dy, axis=0)
        return dy @ self.params["W"].T if need_dx else None


def test_start_gradients_zeroes_layers_that_only_add(backend):
    net = random_net(backend, [_AddsOnly(3, 4), Tanh(), Dense(4, 2)], 0)
    x, dy = backend.asarray(random_array(2, (6, 3))), backend.asarray(random_array(3, (6, 2)))
    net.forward(x)
    net.zero_grad()
    net.backward(dy)
    want = to_numpy(net.grads).copy()
    net.grads[...] = backend.asarray(random_array(7, (net.n_params,)))
    net.start_gradients()
    net.forward(x)
    net.backward(dy)
    np.testing.assert_allclose(to_numpy(net.grads), want, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# Flat buffers
# --------------------------------------------------------------------------------------------


def test_params_and_grads_are_one_flat_buffer(backend):
    net = Sequential(mlp([3, 5, 2], batchnorm=True), backend, dtype="float64")
    assert net.n_params == 3 * 5 + 5 + 2 * 5 + 5 * 2 + 2
    assert tuple(net.params.shape) == (net.n_params,) and tuple(net.grads.shape) == (net.n_params,)

    # writes through the network's buffers show in the layers' views, and vice versa
    values = np.arange(net.n_params, dtype=np.float64)
    net.params[...] = backend.asarray(values)
    net.grads[...] = backend.asarray(-values)
    offset = 0
    for layer in net.layers:
        for name, shape in layer.param_shapes().items():
            size = int(np.prod(shape))
            expected = values[offset : offset + size].reshape(shape)
            np.testing.assert_array_equal(to_numpy(layer.params[name]), expected)
            np.testing.assert_array_equal(to_numpy(layer.grads[name]), -expected)
            offset += size
    assert offset == net.n_params

    dense = net.layers[0]
    dense.params["W"][...] = 7.0
    dense.grads["b"][...] = 3.0
    np.testing.assert_array_equal(to_numpy(net.params)[:15], 7.0)
    np.testing.assert_array_equal(to_numpy(net.grads)[15:20], 3.0)


def test_layers_hold_views_numpy():
    net = Sequential(mlp([3, 5, 2], batchnorm=True), "numpy")
    for layer in net.layers:
        for name in layer.param_shapes():
            assert np.shares_memory(layer.params[name], net.params)
            assert np.shares_memory(layer.grads[name], net.grads)
            assert not np.shares_memory(layer.params[name], net.grads)


def test_dtype_and_seed(backend):
    net32 = Sequential(mlp([3, 4, 2]), backend)
    assert to_numpy(net32.params).dtype == np.float32
    y = net32.forward(backend.asarray(np.ones((2, 3)), dtype=backend.dtype("float32")))
    assert to_numpy(y).dtype == np.float32

    a = to_numpy(Sequential(mlp([3, 4, 2]), backend, dtype="float64", seed=1).params)
    b = to_numpy(Sequential(mlp([3, 4, 2]), backend, dtype="float64", seed=1).params)
    c = to_numpy(Sequential(mlp([3, 4, 2]), backend, dtype="float64", seed=2).params)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(ValueError, match="float16"):
        Sequential(mlp([3, 2]), backend, dtype="float16")


# --------------------------------------------------------------------------------------------
# Train / eval
# --------------------------------------------------------------------------------------------


def test_train_eval_switch(backend):
    net = Sequential(mlp([3, 4, 2], batchnorm=True, dropout=0.5), backend, dtype="float64")
    assert all(layer.training for layer in net.layers)
    assert net.eval() is net
    assert not any(layer.training for layer in net.layers)
    assert net.train() is net
    assert all(layer.training for layer in net.layers)
    net.train(False)
    assert not any(layer.training for layer in net.layers)


def test_eval_uses_running_stats_and_no_dropout(backend):
    net = random_net(backend, [Dense(3, 4), BatchNorm(4), ReLU(), Dropout(0.5), Dense(4, 2)], 0)
    _set_random_running_stats(backend, net, 1)
    net.eval()
    x = random_array(2, (5, 3))
    w1, b1, gamma, beta, w2, b2 = (
        to_numpy(a) for a in (*net.layers[0].params.values(), *net.layers[1].params.values(),
                              *net.layers[4].params.values())
    )  # fmt: skip
    mean, var = to_numpy(net.layers[1].running_mean), to_numpy(net.layers[1].running_var)
    h = (x @ w1 + b1 - mean) / np.sqrt(var + 1e-5) * gamma + beta
    expected = np.maximum(h, 0) @ w2 + b2
    y1 = to_numpy(net.forward(backend.asarray(x)))
    y2 = to_numpy(net.forward(backend.asarray(x)))
    np.testing.assert_allclose(y1, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(y1, y2)  # no dropout, no batch statistics: deterministic
    # one example at a time gives the same rows: nothing depends on the batch in eval mode
    row = to_numpy(net.forward(backend.asarray(x[2:3])))
    np.testing.assert_allclose(row, expected[2:3], rtol=1e-12, atol=1e-12)

    net.train()
    assert not np.allclose(to_numpy(net.forward(backend.asarray(x))), expected)


@pytest.mark.parametrize("momentum", [0.1, 0.5])
def test_batchnorm_running_statistics(backend, momentum):
    net = Sequential([BatchNorm(3, momentum=momentum)], backend, dtype="float64")
    bn = net.layers[0]
    mean, var = np.zeros(3), np.ones(3)
    for step in range(3):
        x = random_array(step, (5, 3), 2.0) + step
        net.forward(backend.asarray(x))
        mean = (1 - momentum) * mean + momentum * x.mean(axis=0)
        var = (1 - momentum) * var + momentum * x.var(axis=0, ddof=1)  # unbiased
        np.testing.assert_allclose(to_numpy(bn.running_mean), mean, rtol=1e-12)
        np.testing.assert_allclose(to_numpy(bn.running_var), var, rtol=1e-12)
    net.eval()
    net.forward(backend.asarray(random_array(9, (5, 3))))
    np.testing.assert_allclose(to_numpy(bn.running_mean), mean, rtol=1e-12)  # eval: no update
    np.testing.assert_allclose(to_numpy(bn.running_var), var, rtol=1e-12)


def test_batchnorm_running_stats_follow_network_dtype(backend):
    for dtype in ("float32", "float64"):
        bn = Sequential([BatchNorm(3)], backend, dtype=dtype).layers[0]
        assert to_numpy(bn.running_mean).dtype == np.dtype(dtype)
        assert to_numpy(bn.running_var).dtype == np.dtype(dtype)


# --------------------------------------------------------------------------------------------
# State dicts
# --------------------------------------------------------------------------------------------


def _bn_net(backend, seed, dtype="float64"):
    return Sequential(mlp([3, 4, 2], batchnorm=True), backend, dtype=dtype, seed=seed)


def test_state_dict_round_trip(backend):
    src = _bn_net(backend, 0)
    src.forward(backend.asarray(random_array(1, (6, 3))))  # moves the running statistics off 0 / 1
    state = src.state_dict()
    assert set(state) == {"0.W", "0.b", "1.gamma", "1.beta", "1.running_mean", "1.running_var", "3.W", "3.b"}
    assert all(isinstance(v, np.ndarray) for v in state.values())

    dst = _bn_net(backend, 1)
    dst.load_state_dict(state)
    for k, v in dst.state_dict().items():
        np.testing.assert_array_equal(v, state[k])
    x = backend.asarray(random_array(2, (4, 3)))
    for mode in ("eval", "train"):
        getattr(src, mode)(), getattr(dst, mode)()
        np.testing.assert_array_equal(to_numpy(dst.forward(x)), to_numpy(src.forward(x)))

    # the loaded values went into the flat buffer (the layers' views), not into new arrays
    np.testing.assert_array_equal(to_numpy(dst.params), to_numpy(src.params))


def test_state_dict_is_a_copy(backend):
    net = _bn_net(backend, 0)
    state = net.state_dict()
    state["0.W"][...] = 123.0
    state["1.running_mean"][...] = 123.0
    assert not np.any(to_numpy(net.layers[0].params["W"]) == 123.0)
    assert not np.any(to_numpy(net.layers[1].running_mean) == 123.0)


def test_load_state_dict_accepts_backend_arrays_and_casts_dtype(backend):
    src = _bn_net(backend, 0, "float64")
    dst = _bn_net(backend, 1, "float32")
    dst.load_state_dict(src.named_arrays())  # live arrays of the backend, float64 into float32
    for k, v in dst.state_dict().items():
        assert v.dtype == np.float32
        np.testing.assert_allclose(v, to_numpy(src.named_arrays()[k]), rtol=1e-6)


def test_load_state_dict_missing_and_unexpected(backend):
    net = _bn_net(backend, 0)
    before = net.state_dict()
    state = dict(before)
    del state["1.running_var"]
    with pytest.raises(ValueError, match=r"missing \['1.running_var'\]"):
        net.load_state_dict(state)

    state = {**before, "9.W": np.zeros(2)}
    with pytest.raises(ValueError, match=r"unexpected \['9.W'\]"):
        net.load_state_dict(state)

    with pytest.raises(ValueError, match=r"missing .*'0.W'"):
        net.load_state_dict({})
    for k, v in net.state_dict().items():  # a failed load leaves the network as it was
        np.testing.assert_array_equal(v, before[k])


def test_load_state_dict_wrong_shape(backend):
    net = _bn_net(backend, 0)
    state = net.state_dict()
    state["3.W"] = np.zeros((2, 4))
    with pytest.raises(ValueError, match=r"'3.W'.*\(2, 4\).*\(4, 2\)"):
        net.load_state_dict(state)


# --------------------------------------------------------------------------------------------
# mlp()
# --------------------------------------------------------------------------------------------


def test_mlp_structure():
    layers = mlp([2, 8, 6, 1], activation="leaky_relu", out_activation="sigmoid", batchnorm=[True, False],
                 dropout=0.3, leak=0.1, bn_momentum=0.2, bn_eps=1e-3)  # fmt: skip
    kinds = [type(layer) for layer in layers]
    assert kinds == [Dense, BatchNorm, LeakyReLU, Dropout, Dense, LeakyReLU, Dropout, Dense, Sigmoid]
    assert (layers[0].n_in, layers[0].n_out, layers[0].init, layers[0].leak) == (2, 8, "he", 0.1)
    assert layers[1].param_shapes() == {"gamma": (8,), "beta": (8,)}
    assert (layers[1].momentum, layers[1].eps) == (0.2, 1e-3)
    assert layers[2].slope == 0.1 and layers[3].p == 0.3
    assert (layers[7].n_in, layers[7].n_out, layers[7].init) == (6, 1, "glorot")

    plain = mlp([3, 4, 2], activation="tanh")
    assert [type(layer) for layer in plain] == [Dense, Tanh, Dense]
    assert plain[0].init == "glorot"
    assert [type(layer) for layer in mlp([3, 2])] == [Dense]
    with_bn = mlp([3, 4, 2], "relu", batchnorm=True)
    assert [type(layer) for layer in with_bn] == [Dense, BatchNorm, ReLU, Dense]
    assert mlp([3, 4, 2], "relu")[0].leak == 0.0
    maxout = mlp([3, 4, 2], "maxout", batchnorm=True, pieces=3)  # each unit takes 3 Dense outputs
    assert [type(layer) for layer in maxout] == [Dense, BatchNorm, Maxout, Dense]
    assert (maxout[0].n_out, maxout[0].init, maxout[1].n_features) == (12, "he", 12)
    assert (maxout[2].pieces, maxout[3].n_in) == (3, 4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sizes": [3]}, "at least an input and an output"),
        ({"sizes": []}, "at least an input and an output"),
        ({"sizes": [3, 4, 2], "batchnorm": [True, False]}, "1 flags"),
        ({"sizes": [3, 4, 4, 2], "batchnorm": [True]}, "2 flags"),
        ({"sizes": [3, 4, 2], "activation": "gelu"}, "unknown activation 'gelu'"),
        ({"sizes": [3, 4, 2], "out_activation": "softmax"}, "unknown activation 'softmax'"),
        ({"sizes": [3, 4, 2], "dropout": 1.0}, "Dropout p"),
    ],
)
def test_mlp_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mlp(**kwargs)


def test_make_activation():
    assert isinstance(make_activation("relu"), ReLU)
    assert isinstance(make_activation("tanh"), Tanh)
    assert isinstance(make_activation("sigmoid"), Sigmoid)
    leaky = make_activation("leaky_relu", 0.05)
    assert isinstance(leaky, LeakyReLU) and leaky.slope == 0.05
    maxout = make_activation("maxout", pieces=3)
    assert isinstance(maxout, Maxout) and maxout.pieces == 3
    with pytest.raises(ValueError, match="expected one of relu, leaky_relu, maxout, tanh, sigmoid"):
        make_activation("swish")
