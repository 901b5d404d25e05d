"""The losses of the game and the penalties: values against plain formulas, gradients against central differences."""

import numpy as np
import pytest
from gradcheck import GRAD_SETTINGS, assert_close_grad, numerical_grad
from hypothesis import assume, example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygan.backend import namespace_of, to_numpy
from tinygan.engine.objectives import LOSSES, d_fake_loss, d_real_loss, g_loss, gp_penalty, hinge, r1_penalty

OUTPUTS = hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
                     elements=st.floats(-4.0, 4.0, allow_nan=False))

# The plain formulas of the table in tinygan/objectives.py, per element, before the mean.
NAIVE = {
    "hinge": (lambda a: np.maximum(1 - a, 0), lambda a: np.maximum(1 + a, 0), lambda a: -a),
    "lsgan": (lambda a: 0.5 * (a - 1) ** 2, lambda a: 0.5 * a**2, lambda a: 0.5 * (a - 1) ** 2),
    "wgan": (lambda a: -a, lambda a: a, lambda a: -a),
    "wgan-gp": (lambda a: -a, lambda a: a, lambda a: -a),
}
SIDES = {"real": lambda name: d_real_loss(name), "fake": d_fake_loss, "generator": g_loss}


def _check(backend, loss, a, what):
    value, grad = loss(backend.asarray(a))
    assert tuple(value.shape) == () and tuple(grad.shape) == a.shape
    numeric = numerical_grad(lambda x: float(to_numpy(loss(backend.asarray(x))[0])), a)
    assert_close_grad(to_numpy(grad), numeric, what)
    return float(to_numpy(value))


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("name", [n for n in LOSSES if n != "bce"])  # bce: tests/engine/test_losses.py
@GRAD_SETTINGS
@given(a=OUTPUTS)
def test_each_loss_has_its_formula_and_gradient(backend, name, side, a):
    assume(np.all(np.abs(np.abs(a) - 1.0) > 1e-3))  # the hinge's kinks at a = ±1
    value = _check(backend, SIDES[side](name), a, f"{name} {side} gradient")
    naive = NAIVE[name][list(SIDES).index(side)]
    np.testing.assert_allclose(value, np.mean(naive(a)), rtol=1e-12, atol=1e-12)


def test_bce_is_the_default_game_with_label_smoothing_on_real_only(backend):
    a = backend.asarray(np.array([[0.3], [-1.2]]))
    y = 0.9
    p = 1 / (1 + np.exp(-np.array([0.3, -1.2])))
    real = float(to_numpy(d_real_loss("bce", y)(a)[0]))
    np.testing.assert_allclose(real, np.mean(-y * np.log(p) - (1 - y) * np.log(1 - p)), rtol=1e-12)
    np.testing.assert_allclose(float(to_numpy(d_fake_loss("bce")(a)[0])), np.mean(-np.log(1 - p)), rtol=1e-12)
    np.testing.assert_allclose(float(to_numpy(g_loss("bce")(a)[0])), np.mean(-np.log(p)), rtol=1e-12)


G_ROWS = hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=5),
                    elements=st.floats(-3.0, 3.0, allow_nan=False))


@GRAD_SETTINGS
@given(g=G_ROWS, gamma=st.floats(0.01, 20.0))
def test_r1_penalty_value_and_gradient(backend, g, gamma):
    value = _check(backend, lambda x: r1_penalty(x, gamma), g, "R1 gradient")
    np.testing.assert_allclose(value, gamma / 2 * np.mean(np.sum(g**2, axis=1)), rtol=1e-12, atol=1e-15)


@GRAD_SETTINGS
@given(g=G_ROWS, weight=st.floats(0.01, 20.0))
@example(g=np.array([[0.5, 0.5, 0.5, 0.5]]), weight=1.0)  # ‖g‖ = 1: a gradient of 5e-13, as small as h²·f‴
@example(g=np.array([[1.0]]), weight=1.0)  # the same, and the analytic 5e-13 itself rounds at 1e-16
def test_gradient_penalty_value_and_gradient(backend, g, weight):
    assume(np.min(np.linalg.norm(g, axis=1)) > 1e-2)  # the norm's kink at g = 0
    value = _check(backend, lambda x: gp_penalty(x, weight), g, "WGAN-GP gradient")
    np.testing.assert_allclose(value, weight * np.mean((np.linalg.norm(g, axis=1) - 1) ** 2), rtol=1e-9, atol=1e-15)


def test_gradient_penalty_of_a_zero_gradient_is_finite(backend):
    value, grad = gp_penalty(backend.asarray(np.zeros((2, 3))), 10.0)
    assert float(to_numpy(value)) == pytest.approx(10.0, rel=1e-5) and np.all(to_numpy(grad) == 0)


def _hinge_without_indicator(a, sign):
    value, _ = hinge(a, sign)
    return value, a * 0 + sign / a.size  # forgets that the hinge is flat beyond its margin


def _gp_forgets_the_norm_derivative(g, weight):
    value, _ = gp_penalty(g, weight)
    xp = namespace_of(g)
    norms = xp.sqrt(xp.sum(g * g, axis=1, keepdims=True))
    return value, g * (norms - 1.0) * (2.0 * weight / g.shape[0])  # ∂‖g‖/∂g taken as g, not g/‖g‖


@pytest.mark.parametrize(
    "loss, x",
    [(lambda a: _hinge_without_indicator(a, 1.0), np.array([[-2.0], [0.5], [-1.5]])),
     (lambda g: _gp_forgets_the_norm_derivative(g, 1.0), np.array([[0.2, 0.1], [3.0, -1.0]]))],
    ids=["hinge-no-indicator", "gp-no-norm"],
)
def test_the_check_catches_wrong_gradients(backend, loss, x):
    with pytest.raises(AssertionError, match="relative error"):
        _check(backend, loss, x, "wrong")
