"""Convolutional layers: finite-difference gradient checks, the layer contract, chunking, shapes and errors.

Every check runs on each backend (the ``backend`` fixture). Small layers are checked element by element
(``check_network``); larger ones along random directions in parameter and input space, which costs two
forward passes per direction whatever the layer's size.
"""

import numpy as np
import pytest
from gradcheck import (
    GRAD_SETTINGS,
    STEP,
    assert_backward_accumulates,
    assert_skips_param_grads,
    check_network,
    conditioning,
    projection_loss,
    random_array,
    random_net,
)
from hypothesis import assume, given
from hypothesis import strategies as st

from tinygan import BatchNorm, BatchNorm2d, Conv2d, ConvTranspose2d, Dense, Dropout, Flatten, LeakyReLU, Reshape, Tanh
from tinygan.backend import to_numpy
from tinygan.engine.layers import layer_from_spec, taps
from tinygan.engine.network import Sequential
from tinygan.models.averaging import AveragedNetwork

SEEDS = st.integers(0, 2**31)
KINK = 1e-3


@st.composite
def geometries(draw, channels=4, batch=3, extra=4):
    """``(n, c_in, c_out, k, s, p, h, w)``: kernels 1–5, strides 1–3, paddings 0–2 (< kernel), odd and
    even sizes from the smallest the kernel allows."""
    k = draw(st.integers(1, 5))
    s = draw(st.integers(1, 3))
    p = draw(st.integers(0, min(2, k - 1)))
    smallest = max(1, k - 2 * p)
    h, w = draw(st.integers(smallest, smallest + extra)), draw(st.integers(smallest, smallest + extra))
    c_in, c_out = draw(st.integers(1, channels)), draw(st.integers(1, channels))
    return draw(st.integers(1, batch)), c_in, c_out, k, s, p, h, w


def _input_and_projection(net, seed, n, h, w, c):
    x = random_array(seed + 2, (n, h, w, c))
    out = net.forward(net.backend.asarray(x, dtype=net.params.dtype))
    return x, random_array(seed + 3, tuple(out.shape))


@GRAD_SETTINGS
@given(seed=SEEDS, geometry=geometries())
def test_conv2d_gradients(backend, seed, geometry):
    n, c_in, c_out, k, s, p, h, w = geometry
    net = random_net(backend, [Conv2d(c_in, c_out, k, s, p)], seed)
    check_network(net, *_input_and_projection(net, seed, n, h, w, c_in))


@GRAD_SETTINGS
@given(seed=SEEDS, geometry=geometries(extra=3), data=st.data())
def test_conv_transpose2d_gradients(backend, seed, geometry, data):
    n, c_in, c_out, k, s, p, h, w = geometry
    q = data.draw(st.integers(0, s - 1), label="output_padding")
    layer = ConvTranspose2d(c_in, c_out, k, s, p, q)
    h, w = max(h - k + 1, 1), max(w - k + 1, 1)  # a transposed convolution's input is the smaller side
    assume(min(layer.output_shape(h, w)[:2]) >= 1)
    net = random_net(backend, [layer], seed)
    check_network(net, *_input_and_projection(net, seed, n, h, w, c_in))


def directional_check(net, x, r, seed, directions=3):
    """``(L(θ + h d, x + h e) − L(θ − h d, x − h e)) / 2h = ⟨∇θ L, d⟩ + ⟨∇ₓ L, e⟩`` for random ``(d, e)``.

    A convolution is bilinear in (θ, x), so the central difference is exact up to rounding: the error is
    measured against ``‖(∇θ, ∇ₓ)‖·‖(d, e)‖``, the largest the directional derivative can be.
    """
    backend, dtype = net.backend, net.params.dtype
    p0 = to_numpy(net.params).astype(np.float64)
    net.forward(backend.asarray(x, dtype=dtype))
    net.zero_grad()
    dx = to_numpy(net.backward(backend.asarray(r, dtype=dtype)))
    grad = np.concatenate([to_numpy(net.grads), dx.ravel()])
    rng = np.random.default_rng(seed)
    for _ in range(directions):
        direction = rng.standard_normal(grad.shape)

        def loss(t, direction=direction):
            net.params[...] = backend.asarray(p0 + t * direction[: p0.size], dtype=dtype)
            out = net.forward(backend.asarray(x + t * direction[p0.size :].reshape(x.shape), dtype=dtype))
            return projection_loss(to_numpy(out), r)

        numeric = (loss(STEP) - loss(-STEP)) / (2 * STEP)
        scale = np.linalg.norm(grad) * np.linalg.norm(direction)
        error = abs(numeric - grad @ direction)
        assert error <= 1e-7 * scale, f"directional derivative {numeric} != {grad @ direction}: relative error"
    net.params[...] = backend.asarray(p0, dtype=dtype)


@GRAD_SETTINGS
@given(seed=SEEDS, geometry=geometries(channels=8, batch=4, extra=8), transpose=st.booleans())
def test_larger_layers_along_random_directions(backend, seed, geometry, transpose):
    n, c_in, c_out, k, s, p, h, w = geometry
    if transpose:
        layer = ConvTranspose2d(c_in, c_out, k, s, p, s - 1)
        h, w = max(h - k + 1, 1), max(w - k + 1, 1)
        assume(min(layer.output_shape(h, w)[:2]) >= 1)
    else:
        layer = Conv2d(c_in, c_out, k, s, p)
    net = random_net(backend, [layer], seed)
    directional_check(net, *_input_and_projection(net, seed, n, h, w, c_in), seed)


class _FlippedKernelDx(Conv2d):
    """An input gradient through the kernel turned by 180° (the classic convolution/correlation slip)."""

    def backward(self, dy, need_dx=True, need_dparams=True):
        super().backward(dy, need_dx=False, need_dparams=need_dparams)
        k, c_in, c_out = self.kernel, self.c_in, self.c_out
        w = self.xp.reshape(self.params["W"], (k, k, c_in, c_out))
        flipped = self.xp.reshape(self.xp.flip(w, axis=(0, 1)), (k * k * c_in, c_out))
        return self._transpose(dy, flipped) if need_dx else None


class _TransposeMissesLastTap(ConvTranspose2d):
    """A weight gradient that forgets the last tap (an off-by-one in a tap loop)."""

    def backward(self, dy, need_dx=True, need_dparams=True):
        dx = super().backward(dy, need_dx, need_dparams)
        if need_dparams:
            self.grads["W"][-self.c_out * self.c_in :, :] = 0
        return dx


@pytest.mark.parametrize("check", ["elementwise", "directional"])
@pytest.mark.parametrize(
    "layer", [lambda: _FlippedKernelDx(2, 3, 3, 1, 1), lambda: _TransposeMissesLastTap(2, 3, 3, 2)],
    ids=["flipped-kernel-dx", "missing-tap-dw"],
)
def test_the_checks_catch_a_wrong_convolution_gradient(backend, layer, check):
    net = random_net(backend, [layer()], 3)
    x, r = _input_and_projection(net, 3, 2, 4, 5, 2)
    with pytest.raises(AssertionError, match="relative error"):
        check_network(net, x, r) if check == "elementwise" else directional_check(net, x, r, 3)


# -- whole stacks -----------------------------------------------------------------------------


def _spread(net, x):
    """The smallest variance, over (N, H, W), of any BatchNorm2d input's channel."""
    h, spread = net.backend.asarray(x, dtype=net.params.dtype), np.inf
    for layer in net.layers:
        if isinstance(layer, BatchNorm2d):
            host = to_numpy(h)
            spread = min(spread, float(np.min(np.var(host.reshape(-1, host.shape[-1]), axis=0))))
        h = layer.forward(h)
    return spread


def critic_stack(c, k, s, p, h, w):
    """conv → BatchNorm2d → leaky ReLU → conv → flatten → dense."""
    first = Conv2d(c, 3, k, s, p, init="he", leak=0.2)
    h1, w1, _ = first.output_shape(h, w)
    second = Conv2d(3, 2, 2, 1, 1)
    h2, w2, _ = second.output_shape(h1, w1)
    return [first, BatchNorm2d(3), LeakyReLU(0.2), second, Flatten(), Dense(h2 * w2 * 2, 2)]


def generator_stack(n_in, k, s, p, q):
    """dense → reshape → transposed conv → BatchNorm2d → leaky ReLU → transposed conv → tanh."""
    first = ConvTranspose2d(3, 2, k, s, p, q)
    h, w, _ = first.output_shape(2, 3)
    return [Dense(n_in, 2 * 3 * 3), Reshape((2, 3, 3)), first, BatchNorm2d(2), LeakyReLU(0.2),
            ConvTranspose2d(2, 1, 2, 1, 0), Tanh()], (h, w)


@GRAD_SETTINGS
@given(seed=SEEDS, n=st.integers(1, 3), c=st.integers(1, 2), k=st.integers(1, 3), s=st.integers(1, 2),
       p=st.integers(0, 1), h=st.integers(3, 6), w=st.integers(3, 6))
def test_critic_stack_gradients(backend, seed, n, c, k, s, p, h, w):
    assume(p < k)
    net = random_net(backend, critic_stack(c, k, s, p, h, w), seed, param_scale=0.7)
    x = random_array(seed + 2, (n, h, w, c))
    assume(conditioning(net, x)[0] > KINK and _spread(net, x) > 1e-2)
    check_network(net, x, random_array(seed + 3, (n, 2)))


@GRAD_SETTINGS
@given(seed=SEEDS, n=st.integers(1, 3), k=st.integers(1, 4), s=st.integers(1, 2), p=st.integers(0, 1),
       data=st.data())
def test_generator_stack_gradients(backend, seed, n, k, s, p, data):
    q = data.draw(st.integers(0, s - 1), label="output_padding")
    assume(p < k)
    layers, (h, w) = generator_stack(3, k, s, p, q)
    assume(h >= 1 and w >= 1)
    net = random_net(backend, layers, seed, param_scale=0.7)
    x = random_array(seed + 2, (n, 3))
    assume(conditioning(net, x)[0] > KINK and _spread(net, x) > 1e-2)
    check_network(net, x, random_array(seed + 3, (n, h + 1, w + 1, 1)))


@GRAD_SETTINGS
@given(seed=SEEDS, n=st.integers(1, 3), p=st.floats(0.1, 0.7))
def test_dropout_and_leaky_relu_on_4d_activations(backend, seed, n, p):
    drop = Dropout(p)
    net = random_net(backend, [Conv2d(2, 3, 3, 1, 1), LeakyReLU(0.2), drop], seed)
    x = random_array(seed + 2, (n, 4, 5, 2))
    assume(conditioning(net, x)[0] > KINK)

    def reseed():
        drop.rng = backend.rng(seed)

    check_network(net, x, random_array(seed + 3, (n, 4, 5, 3)), before_forward=reseed)


# -- the layer contract -----------------------------------------------------------------------


CONTRACT_NETS = {
    "conv2d": (lambda: [Conv2d(2, 3, 3, 2, 1)], (3, 5, 6, 2)),
    "conv-transpose2d": (lambda: [ConvTranspose2d(3, 2, 4, 2, 1, 1)], (3, 3, 2, 3)),
    "batchnorm2d": (lambda: [BatchNorm2d(2)], (3, 4, 5, 2)),
    "stack": (lambda: critic_stack(2, 3, 2, 1, 6, 5), (3, 6, 5, 2)),
}


@pytest.mark.parametrize("name", CONTRACT_NETS)
def test_backward_adds_into_gradients_and_leaves_dy_alone(backend, name):
    layers, shape = CONTRACT_NETS[name]
    net = random_net(backend, layers(), 4)
    out = net.forward(backend.asarray(random_array(5, shape)))
    assert_backward_accumulates(backend, net, net.backward, tuple(out.shape))
    assert all(layer.writes_first for layer in net.layers if layer.param_shapes())


@pytest.mark.parametrize("name", CONTRACT_NETS)
def test_backward_writes_stale_gradients_and_skips_what_is_not_needed(backend, name):
    layers, shape = CONTRACT_NETS[name]
    net = random_net(backend, layers(), 4)
    x = backend.asarray(random_array(5, shape))
    out = net.forward(x)
    dy = backend.asarray(random_array(6, tuple(out.shape)))
    net.zero_grad()
    net.backward(dy)
    fresh = to_numpy(net.grads).copy()
    net.grads[...] = backend.asarray(random_array(7, (net.n_params,)))  # old values, to be written over
    net.start_gradients()
    net.backward(dy)
    np.testing.assert_allclose(to_numpy(net.grads), fresh, rtol=1e-12, atol=1e-12)
    assert_skips_param_grads(backend, net, net.backward, dy)
    assert net.backward(dy, need_dx=False) is None


# -- chunks, buffers, shapes ------------------------------------------------------------------


@pytest.mark.parametrize("transpose", [False, True], ids=["conv2d", "conv-transpose2d"])
def test_chunks_of_images_give_the_whole_batch_result(backend, monkeypatch, transpose):
    layer = (lambda: ConvTranspose2d(3, 4, 4, 2, 1, 1)) if transpose else (lambda: Conv2d(3, 4, 4, 2, 1))
    x = random_array(1, (5, 6, 7, 3))
    results = []
    for budget in (taps.GATHER_BYTES, 1000):  # the second fits one or two images per chunk
        monkeypatch.setattr(taps, "GATHER_BYTES", budget)
        net = random_net(backend, [layer()], 2)
        out = net.forward(backend.asarray(x))
        net.zero_grad()
        dx = net.backward(backend.asarray(random_array(3, tuple(out.shape))))
        results.append([to_numpy(a).copy() for a in (out, net.grads, dx)])
    for whole, chunked in zip(*results, strict=True):
        np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("transpose", [False, True], ids=["conv2d", "conv-transpose2d"])
def test_threads_split_im2col_and_col2im_by_images_without_changing_a_bit(transpose):
    from tinygan.backend import pool

    layer = (lambda: ConvTranspose2d(8, 8, 4, 2, 1)) if transpose else (lambda: Conv2d(8, 8, 4, 2, 1))
    x = random_array(1, (67, 14, 14, 8)).astype(np.float32)  # over MIN_PARALLEL elements of patches: threads start
    results = []
    try:
        for threads in (1, 3):
            pool.set_threads(threads)
            net = Sequential([layer()], "numpy", seed=3)
            out = net.forward(x)
            net.zero_grad()
            dx = net.backward(np.asarray(random_array(2, tuple(out.shape)), np.float32))
            results.append([out.copy(), net.grads.copy(), dx.copy()])
    finally:
        pool.set_pool(None)
    for one, split in zip(*results, strict=True):
        np.testing.assert_array_equal(split, one)


def test_the_gathered_patches_stay_within_the_budget(monkeypatch):
    monkeypatch.setattr(taps, "GATHER_BYTES", 64 * 1024)
    net = Sequential([Conv2d(8, 16, 4, 2, 1)], "numpy", dtype="float32")
    out = net.forward(np.ones((64, 14, 14, 8), np.float32))  # 64·49·128·4 B = 1.6 MB of patches in all
    net.backward(np.ones(out.shape, np.float32))
    buffers = net.layers[0].work.arrays
    assert {"cols", "dcols"} <= set(buffers)
    assert all(a.nbytes <= 64 * 1024 for a in buffers.values())


@pytest.mark.parametrize(
    "layer, size, expected",
    [(Conv2d(1, 2, 4, 2, 1), (14, 14), (7, 7, 2)), (Conv2d(1, 2, 3, 3, 0), (7, 8), (2, 2, 2)),
     (ConvTranspose2d(2, 1, 4, 2, 1), (7, 7), (14, 14, 1)), (ConvTranspose2d(2, 1, 3, 2, 1, 1), (7, 7), (14, 14, 1))],
    ids=["conv-k4s2p1", "conv-k3s3", "transpose-k4s2p1", "transpose-output-padding"],
)
def test_output_shapes(layer, size, expected):
    net = Sequential([layer], "numpy", dtype="float64")
    assert tuple(net.forward(np.zeros((2, *size, layer.c_in))).shape) == (2, *expected)
    assert layer.output_shape(*size) == expected


def test_convolution_values_by_hand():
    """A 1×1 convolution is a Dense on every pixel; a 2×2 box kernel sums 2×2 blocks."""
    net = Sequential([Conv2d(2, 3, 1)], "numpy", dtype="float64")
    x = random_array(0, (2, 3, 4, 2))
    w, b = net.layers[0].params["W"], net.layers[0].params["b"]
    b[...] = [1.0, 2.0, 3.0]
    np.testing.assert_allclose(net.forward(x), x @ w + b, rtol=1e-14)
    box = Sequential([Conv2d(1, 1, 2, 2)], "numpy", dtype="float64")
    box.layers[0].params["W"][...] = 1.0
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(box.forward(x)[0, :, :, 0], [[10.0, 18.0], [42.0, 50.0]])


def test_batchnorm2d_is_batchnorm_over_pixels(backend):
    x = random_array(3, (4, 3, 5, 2))
    conv_bn = random_net(backend, [BatchNorm2d(2)], 1)
    flat_bn = random_net(backend, [BatchNorm(2)], 1)
    y = to_numpy(conv_bn.forward(backend.asarray(x)))
    np.testing.assert_allclose(y.reshape(-1, 2), to_numpy(flat_bn.forward(backend.asarray(x.reshape(-1, 2)))))
    np.testing.assert_allclose(to_numpy(conv_bn.layers[0].running_var), to_numpy(flat_bn.layers[0].running_var))


def test_standing_statistics_reach_batchnorm2d():
    """The averaged generator measures its BatchNorm2d statistics on itself, as it does for BatchNorm."""
    layers, _ = generator_stack(4, 4, 2, 1, 0)
    source = Sequential(layers, "numpy", dtype="float32", seed=1)
    averaged = AveragedNetwork(source, 0.999, source.backend, "float32", seed=3)
    bn = averaged.net.layers[3]
    before = to_numpy(bn.running_mean).copy()
    averaged.network(step=10, latent_dim=4, dtype=np.float32)
    assert not np.array_equal(to_numpy(bn.running_mean), before)


def test_specs_rebuild_the_layers_and_checkpoints_hold_their_arrays():
    layers = [Conv2d(1, 4, 4, 2, 1, "he", 0.2), BatchNorm2d(4), Reshape((2, 98, 2)), Flatten(),
              ConvTranspose2d(4, 1, 3, 2, 1, 1), Reshape([7, 7, 1])]
    for layer in layers:
        rebuilt = layer_from_spec(layer.spec())
        assert type(rebuilt) is type(layer) and rebuilt.spec() == layer.spec()
    net = Sequential(layers[:2], "numpy")
    state = net.state_dict()
    assert state["0.W"].shape == (16, 4) and state["1.running_var"].shape == (4,)
    twin = Sequential([layer_from_spec(layer.spec()) for layer in layers[:2]], "numpy", seed=5)
    twin.load_state_dict(state)
    np.testing.assert_array_equal(twin.params, net.params)


def test_bad_shapes_and_arguments_are_refused_with_reasons():
    with pytest.raises(ValueError, match="output_padding must be in"):
        ConvTranspose2d(1, 1, 3, 2, 1, 2)
    with pytest.raises(ValueError, match="kernel >= 1"):
        Conv2d(1, 1, 0)
    with pytest.raises(ValueError, match="init must be"):
        Conv2d(1, 1, 3, init="lecun")
    net = Sequential([Conv2d(3, 2, 5)], "numpy")
    with pytest.raises(ValueError, match=r"expects \(N, H, W, 3\)"):
        net.forward(np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(ValueError, match="smaller than the 5x5 kernel"):
        net.forward(np.zeros((2, 4, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm2d expects \(N, H, W, 3\)"):
        Sequential([BatchNorm2d(3)], "numpy").forward(np.zeros((2, 3), np.float32))
