"""Losses: values, finite-difference gradients, and stability at extreme logits."""

import warnings

import numpy as np
import pytest
from gradcheck import GRAD_SETTINGS, assert_close_grad, numerical_grad
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygan import bce_with_logits, softmax_cross_entropy
from tinygan.backend import to_numpy

SHAPES = hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=6)
LOGIT = st.floats(-15.0, 15.0, allow_nan=False, allow_infinity=False)
PROB = st.floats(0.0, 1.0, allow_nan=False)
SCALAR_TARGETS = st.one_of(st.sampled_from([0.0, 1.0, 0.9, 0.1]), PROB)


def _naive_bce(a, y):
    p = 1 / (1 + np.exp(-a))
    return np.mean(-y * np.log(p) - (1 - y) * np.log(1 - p))


def _naive_softmax_ce(a, labels):
    p = np.exp(a) / np.sum(np.exp(a), axis=1, keepdims=True)
    return -np.mean(np.log(p[np.arange(len(labels)), labels]))


def _check_loss_gradient(backend, loss_fn, logits, *args):
    loss, grad = loss_fn(backend.asarray(logits), *args)
    assert tuple(loss.shape) == ()  # a 0-d device array, not a host float
    assert tuple(grad.shape) == logits.shape
    numeric = numerical_grad(lambda a: float(to_numpy(loss_fn(backend.asarray(a), *args)[0])), logits)
    assert_close_grad(to_numpy(grad), numeric, f"{loss_fn.__name__} gradient")
    return float(to_numpy(loss))


# --------------------------------------------------------------------------------------------
# Gradient checks and values
# --------------------------------------------------------------------------------------------


@GRAD_SETTINGS
@given(data=st.data(), target=SCALAR_TARGETS)
def test_bce_gradient_scalar_target(backend, data, target):
    logits = data.draw(hnp.arrays(np.float64, SHAPES, elements=LOGIT))
    loss = _check_loss_gradient(backend, bce_with_logits, logits, target)
    np.testing.assert_allclose(loss, _naive_bce(logits, target), rtol=1e-10, atol=1e-12)


@GRAD_SETTINGS
@given(data=st.data())
def test_bce_gradient_array_target(backend, data):
    logits = data.draw(hnp.arrays(np.float64, SHAPES, elements=LOGIT))
    target = data.draw(hnp.arrays(np.float64, logits.shape, elements=PROB))
    loss = _check_loss_gradient(backend, bce_with_logits, logits, backend.asarray(target))
    np.testing.assert_allclose(loss, _naive_bce(logits, target), rtol=1e-10, atol=1e-12)


@GRAD_SETTINGS
@given(data=st.data())
def test_bce_label_smoothing(backend, data):
    """One-sided label smoothing: target 0.9 as a scalar and as an array give the same loss and gradient."""
    logits = data.draw(hnp.arrays(np.float64, SHAPES, elements=LOGIT))
    loss_s, grad_s = bce_with_logits(backend.asarray(logits), 0.9)
    loss_a, grad_a = bce_with_logits(backend.asarray(logits), backend.asarray(np.full(logits.shape, 0.9)))
    np.testing.assert_allclose(to_numpy(loss_s), to_numpy(loss_a), rtol=1e-14)
    np.testing.assert_allclose(to_numpy(grad_s), to_numpy(grad_a), rtol=1e-14)
    _check_loss_gradient(backend, bce_with_logits, logits, 0.9)
    sigma = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(to_numpy(grad_s), (sigma - 0.9) / logits.size, rtol=1e-12, atol=1e-15)


@GRAD_SETTINGS
@given(data=st.data(), n=st.integers(1, 6), k=st.integers(2, 5))
def test_softmax_cross_entropy_gradient(backend, data, n, k):
    logits = data.draw(hnp.arrays(np.float64, (n, k), elements=LOGIT))
    labels = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    loss = _check_loss_gradient(backend, softmax_cross_entropy, logits, backend.asarray(labels))
    np.testing.assert_allclose(loss, _naive_softmax_ce(logits, labels), rtol=1e-10, atol=1e-12)
    grad = to_numpy(softmax_cross_entropy(backend.asarray(logits), backend.asarray(labels))[1])
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-15)  # softmax − one-hot sums to zero


@pytest.mark.parametrize("logits", [[1.0, -10.0], [0.0, -10.5]])
def test_softmax_cross_entropy_gradient_where_rounding_hides_from_a_regular_line(backend, logits):
    """1 + e⁻¹¹ rounds to steps of 2⁻⁵², a sawtooth along any evenly spaced line whose differences
    vanish; the noise estimate at random points sees it, and the check allows for it."""
    _check_loss_gradient(backend, softmax_cross_entropy, np.array([logits]), backend.asarray(np.array([0])))


def test_bce_known_values(backend):
    loss, grad = bce_with_logits(backend.asarray(np.zeros((2, 2))), 1.0)
    np.testing.assert_allclose(to_numpy(loss), np.log(2), rtol=1e-15)
    np.testing.assert_allclose(to_numpy(grad), -0.5 / 4, rtol=1e-15)


def test_softmax_cross_entropy_known_values(backend):
    loss, grad = softmax_cross_entropy(backend.asarray(np.zeros((2, 4))), backend.asarray(np.array([0, 3])))
    np.testing.assert_allclose(to_numpy(loss), np.log(4), rtol=1e-15)
    expected = np.full((2, 4), 0.25)
    expected[0, 0] = expected[1, 3] = -0.75
    np.testing.assert_allclose(to_numpy(grad), expected / 2, rtol=1e-15)


def test_checker_catches_wrong_loss_gradient(backend):
    """A loss whose gradient forgets the 1/N of the mean fails the same check."""

    def bce_sum_gradient(logits, target):
        loss, grad = bce_with_logits(logits, target)
        return loss, grad * logits.size

    logits = np.random.default_rng(0).normal(size=(3, 2))
    with pytest.raises(AssertionError, match="relative error"):
        _check_loss_gradient(backend, bce_sum_gradient, logits, 1.0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_losses_keep_dtype(backend, dtype):
    logits = backend.asarray(np.zeros((3, 2)), dtype=backend.dtype(dtype))
    for loss, grad in [
        bce_with_logits(logits, 0.9),
        softmax_cross_entropy(logits, backend.asarray(np.array([0, 1, 1]))),
    ]:
        assert to_numpy(loss).dtype == np.dtype(dtype)
        assert to_numpy(grad).dtype == np.dtype(dtype)


# --------------------------------------------------------------------------------------------
# Extreme logits
# --------------------------------------------------------------------------------------------


def _strict_fp():
    """Overflow, invalid operations and division by zero raise; warnings are errors.

    Underflow stays silent: ``exp(−|a|)`` rounding to 0 for a huge ``|a|`` is the
    intended, exact-enough result (NumPy ignores underflow by default too).
    """
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("error")
    return ctx, np.errstate(over="raise", divide="raise", invalid="raise", under="ignore")


def _sigmoid_limit(a):
    return 1.0 if a > 0 else 0.0


EXTREME_BCE = [
    (a, y, expected)
    for big in (1e4, 1e30)
    for a, y, expected in [
        (big, 1.0, 0.0),
        (big, 0.0, big),
        (-big, 0.0, 0.0),
        (-big, 1.0, big),
        (big, 0.9, 0.1 * big),
        (-big, 0.9, 0.9 * big),
    ]
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("array_target", [False, True], ids=["scalar-target", "array-target"])
@pytest.mark.parametrize(("a", "y", "expected"), EXTREME_BCE)
def test_bce_extreme_logits(backend, dtype, array_target, a, y, expected):
    logits = backend.asarray(np.full((2, 3), a), dtype=backend.dtype(dtype))
    target = backend.asarray(np.full((2, 3), y), dtype=backend.dtype(dtype)) if array_target else y
    ctx, errstate = _strict_fp()
    try:
        with errstate:
            loss, grad = bce_with_logits(logits, target)
            loss, grad = to_numpy(loss), to_numpy(grad)
    finally:
        ctx.__exit__(None, None, None)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    # ℓ → (1 − y)·a for a → +∞ and −y·a for a → −∞; float32 rounds a·y, hence rtol
    np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, (_sigmoid_limit(a) - y) / 6, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bce_mixed_extreme_batch(backend, dtype):
    a = np.array([[1e30, -1e30, 1e4, -1e4, 0.0, 3.0]])
    ctx, errstate = _strict_fp()
    try:
        with errstate:
            loss, grad = bce_with_logits(backend.asarray(a, dtype=backend.dtype(dtype)), 1.0)
            loss, grad = to_numpy(loss), to_numpy(grad)
    finally:
        ctx.__exit__(None, None, None)
    np.testing.assert_allclose(loss, (1e30 + 1e4 + np.log(2) + np.log1p(np.exp(-3.0))) / 6, rtol=1e-5)
    np.testing.assert_allclose(grad, (1 / (1 + np.exp(-np.clip(a, -50, 50))) - 1) / 6, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("big", [1e4, 1e30])
def test_softmax_cross_entropy_extreme_logits(backend, dtype, big):
    a = np.array([[big, -big, 0.0], [-big, big, 0.0], [big, big, -big]])
    labels = np.array([0, 0, 1])
    ctx, errstate = _strict_fp()
    try:
        with errstate:
            loss, grad = softmax_cross_entropy(
                backend.asarray(a, dtype=backend.dtype(dtype)), backend.asarray(labels)
            )
            loss, grad = to_numpy(loss), to_numpy(grad)
    finally:
        ctx.__exit__(None, None, None)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    # per-row losses: 0 (right and sure), 2·big (wrong and sure), log 2 (a tie between two classes)
    np.testing.assert_allclose(loss, (0.0 + 2 * big + np.log(2)) / 3, rtol=1e-5)
    expected = np.array([[0.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.5, -0.5, 0.0]]) / 3
    np.testing.assert_allclose(grad, expected, atol=1e-6)
