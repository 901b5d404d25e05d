"""Agreement with PyTorch: ``conv2d``, ``conv_transpose2d`` and ``batch_norm`` in float64, forward and every gradient.

Runs where PyTorch is installed. tinygan's activations are channels last ``(N, H, W, C)`` and its weight
matrices ``(k·k·c_image, c_grid)``; PyTorch's are ``(N, C, H, W)`` and ``(c_out, c_in, k, k)``
(``(c_in, c_out, k, k)`` for the transposed convolution): the conversions are below, once. The same
comparison fails on a wrong stride, a wrong padding or a kernel read with its axes swapped.
"""

import numpy as np
import pytest
from gradcheck import GRAD_SETTINGS, random_array, random_net
from hypothesis import assume, given
from hypothesis import strategies as st
from test_conv import geometries

from tinygan import BatchNorm2d, Conv2d, ConvTranspose2d
from tinygan.backend import to_numpy

torch = pytest.importorskip("torch")
F = torch.nn.functional

SEEDS = st.integers(0, 2**31)
TOL = 1e-8


def _t(a):
    return torch.tensor(np.ascontiguousarray(a), dtype=torch.float64, requires_grad=True)


def nchw(a):
    return np.ascontiguousarray(np.moveaxis(a, 3, 1))


def nhwc(a):
    return np.ascontiguousarray(np.moveaxis(a, 1, 3))


def torch_weight(layer, w):
    """tinygan's ``(k·k·c_image, c_grid)`` matrix as PyTorch's weight (its axes: grid-or-in, image-or-out, a, b)."""
    k = layer.kernel
    return w.reshape(k, k, layer.c_image, layer.c_grid).transpose(3, 2, 0, 1)


def tinygan_weight_grad(layer, g):
    """PyTorch's weight gradient back in tinygan's matrix layout."""
    return np.asarray(g).transpose(2, 3, 1, 0).reshape(-1, layer.c_grid)


def assert_rel(ours, theirs, what):
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != PyTorch's {theirs.shape}"
    err = np.linalg.norm(ours - theirs) / max(np.linalg.norm(theirs), 1e-300)
    assert err <= TOL, f"{what}: relative error {err:.2e} > {TOL:.0e} against PyTorch"


def compare(backend, layer, x, seed, torch_op, weight=torch_weight):
    """Forward and gradients (x, W, b) of ``layer`` against ``torch_op(x, w, b)`` in float64."""
    net = random_net(backend, [layer], seed)
    y = net.forward(backend.asarray(x))
    dy = random_array(seed + 7, tuple(y.shape))
    net.zero_grad()
    dx = net.backward(backend.asarray(dy))
    w, b = to_numpy(layer.params["W"]), to_numpy(layer.params["b"])
    xt, wt, bt = _t(nchw(x)), _t(weight(layer, w)), _t(b)
    yt = torch_op(xt, wt, bt)
    assert_rel(to_numpy(y), nhwc(yt.detach().numpy()), "forward")
    yt.backward(torch.tensor(nchw(dy)))
    assert_rel(to_numpy(dx), nhwc(xt.grad.numpy()), "input gradient")
    assert_rel(to_numpy(layer.grads["W"]), tinygan_weight_grad(layer, wt.grad.numpy()), "weight gradient")
    assert_rel(to_numpy(layer.grads["b"]), bt.grad.numpy(), "bias gradient")


@GRAD_SETTINGS
@given(seed=SEEDS, geometry=geometries(channels=8, batch=4, extra=8))
def test_conv2d_agrees_with_pytorch(backend, seed, geometry):
    n, c_in, c_out, k, s, p, h, w = geometry
    x = random_array(seed, (n, h, w, c_in))
    compare(backend, Conv2d(c_in, c_out, k, s, p), x, seed, lambda x, w, b: F.conv2d(x, w, b, stride=s, padding=p))


@GRAD_SETTINGS
@given(seed=SEEDS, geometry=geometries(channels=8, batch=4, extra=6), data=st.data())
def test_conv_transpose2d_agrees_with_pytorch(backend, seed, geometry, data):
    n, c_in, c_out, k, s, p, h, w = geometry
    q = data.draw(st.integers(0, s - 1), label="output_padding")
    layer = ConvTranspose2d(c_in, c_out, k, s, p, q)
    assume(min(layer.output_shape(h, w)[:2]) >= 1)
    x = random_array(seed, (n, h, w, c_in))
    compare(backend, layer, x, seed,
            lambda x, w, b: F.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=q))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@GRAD_SETTINGS
@given(seed=SEEDS, n=st.integers(1, 4), h=st.integers(1, 5), w=st.integers(1, 5), c=st.integers(1, 8),
       momentum=st.floats(0.01, 0.9))
def test_batchnorm2d_agrees_with_pytorch(backend, training, seed, n, h, w, c, momentum):
    assume(not training or n * h * w > 1)
    net = random_net(backend, [BatchNorm2d(c, momentum=momentum)], seed).train(training)
    bn = net.layers[0]
    mean0, var0 = random_array(seed + 4, (c,)), 0.5 + np.abs(random_array(seed + 5, (c,)))
    bn.running_mean[...], bn.running_var[...] = backend.asarray(mean0), backend.asarray(var0)
    x, dy = random_array(seed, (n, h, w, c)), random_array(seed + 1, (n, h, w, c))
    y = net.forward(backend.asarray(x))
    net.zero_grad()
    dx = net.backward(backend.asarray(dy))
    xt, gt, bt = _t(nchw(x)), _t(to_numpy(bn.params["gamma"])), _t(to_numpy(bn.params["beta"]))
    rm, rv = torch.tensor(mean0), torch.tensor(var0)
    yt = F.batch_norm(xt, rm, rv, gt, bt, training=training, momentum=momentum, eps=bn.eps)
    yt.backward(torch.tensor(nchw(dy)))
    assert_rel(to_numpy(y), nhwc(yt.detach().numpy()), "forward")
    assert_rel(to_numpy(dx), nhwc(xt.grad.numpy()), "input gradient")
    assert_rel(to_numpy(bn.grads["gamma"]), gt.grad.numpy(), "gamma gradient")
    assert_rel(to_numpy(bn.grads["beta"]), bt.grad.numpy(), "beta gradient")
    assert_rel(to_numpy(bn.running_mean), rm.numpy(), "running mean")
    assert_rel(to_numpy(bn.running_var), rv.numpy(), "running variance")


# -- the comparison can fail ------------------------------------------------------------------


def _swapped_kernel_axes(layer, w):
    return torch_weight(layer, w).transpose(0, 1, 3, 2)  # reads the kernel's rows as its columns


@pytest.mark.parametrize(
    "wrong", ["stride", "padding", "kernel-axes", "transpose-stride", "transpose-padding", "output-padding"]
)
def test_a_wrong_stride_padding_or_kernel_layout_fails_the_comparison(backend, wrong):
    x = random_array(1, (2, 7, 7, 3))
    if wrong.startswith("transpose") or wrong == "output-padding":
        layer = ConvTranspose2d(3, 2, 3, 2, 1, 1)
        s, p, q = {"transpose-stride": (3, 1, 1), "transpose-padding": (2, 0, 1), "output-padding": (2, 1, 0)}[wrong]
        op = lambda x, w, b: F.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=q)  # noqa: E731
    else:
        layer = Conv2d(3, 2, 3, 2, 1)
        s, p = {"stride": (1, 1), "padding": (2, 0), "kernel-axes": (2, 1)}[wrong]
        op = lambda x, w, b: F.conv2d(x, w, b, stride=s, padding=p)  # noqa: E731
    weight = _swapped_kernel_axes if wrong == "kernel-axes" else torch_weight
    with pytest.raises(AssertionError, match="PyTorch"):
        compare(backend, layer, x, 2, op, weight)
    compare(backend, type(layer)(**{k: v for k, v in layer.spec().items() if k != "type"}), x, 2,
            (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1)) if isinstance(layer, Conv2d)
            else (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)))
