"""Finite-difference gradient checking for the engine tests (imported as ``from gradcheck import ...``).

Everything here works on any tinygan backend: the engine runs on the backend's
own arrays, while perturbations and comparisons happen on host NumPy float64
copies that are moved over with ``backend.asarray`` and back with ``to_numpy``.

The scalar being differentiated is a random projection of the network output,
``L = sum(out * R)`` with ``R`` fixed, so ``dL/dout = R`` is what ``backward``
receives; every output element then contributes to the check.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
from hypothesis import HealthCheck, settings

from tinygan.backend import to_numpy
from tinygan.engine.layers import BatchNorm, LeakyReLU, Maxout, ReLU
from tinygan.engine.network import Sequential

STEP = 1e-6
"""Finite-difference step: truncation error ~STEP⁴·|f⁽⁵⁾|/30, rounding error ~noise/STEP (see ``numerical_grad``)."""
TOL = 1e-6
"""Largest accepted relative error between analytic and numerical gradients, beyond the rounding allowance."""

NOISE_POINTS, NOISE_DEGREE, NOISE_SPACING = 24, 4, STEP
"""The loss is evaluated at ``NOISE_POINTS`` random points along a random line, up to ``NOISE_SPACING``
(relative to the input, the same scale as the step) either side; what a polynomial of degree
``NOISE_DEGREE`` through them leaves unexplained is rounding noise (see ``loss_noise``)."""
NOISE_SIGMAS = 8.0
"""How many standard deviations of rounding error the allowance admits: a correct gradient fails
with a probability far below one in a billion draws; a wrong one misses by orders of magnitude more."""

GRAD_SETTINGS = settings(
    max_examples=int(os.environ.get("TINYGAN_GRADCHECK_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # `backend` is a stateless value
)
"""Hypothesis settings for gradient checks: modest example counts keep the suite fast."""


def rel_error(analytic: np.ndarray, numeric: np.ndarray, allowance: float = 0.0) -> float:
    """Norm-wise relative error ``max(0, ‖a − n‖ − allowance) / max(‖a‖, ‖n‖)`` (0 for two zero vectors).

    Norm-wise rather than element-wise, so a tiny gradient entry (where the finite difference's
    rounding error dominates) does not fail a correct gradient; ``allowance`` is the error norm
    that rounding alone may put into ``numeric`` (:func:`numerical_grad` measures it).
    """
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    assert analytic.shape == numeric.shape, f"gradient shape {analytic.shape} != {numeric.shape}"
    excess = max(0.0, float(np.linalg.norm(analytic - numeric)) - allowance)
    scale = max(float(np.linalg.norm(analytic)), float(np.linalg.norm(numeric)))
    return excess / scale if scale else (0.0 if excess == 0 else math.inf)


class FiniteDifferences(np.ndarray):
    """Central differences that carry ``allowance``: the error norm their rounding may have."""

    allowance: float = 0.0

    def __array_finalize__(self, obj: np.ndarray | None) -> None:
        self.allowance = getattr(obj, "allowance", 0.0)


def loss_noise(f: Callable[[np.ndarray], float], x0: np.ndarray, seed: int = 0) -> float:
    """Standard deviation of the rounding noise in ``f`` near ``x0``, measured on the scale of the step.

    On the line ``g(t) = f(x0 + t·d)``, at random ``t`` in [−1, 1] with ``d`` of the order of the step,
    ``g`` is a low-degree polynomial to far below rounding (its fifth-order term is ~(1e-6)⁵); the
    least-squares residual of that polynomial is the noise, ``σ² = RSS / (points − degree − 1)``.
    Random, not evenly spaced, points: where ``f`` is locally linear, its rounding error at evenly
    spaced points is a regular sawtooth whose differences vanish (Moré & Wild's ECnoise then sees
    none). A floor of ``ε·max(1, |f(x0)|)``: the checked losses are computed from inputs and weights of
    order one, so an evaluation rounds by at least ε even where ``f`` is tiny, constant or linear in
    exact arithmetic along the line (a penalty at its minimum, a spectrally normalised 1×1 weight)
    and the residual sees nothing.
    """
    rng = np.random.default_rng(seed)
    d = rng.standard_normal(x0.shape) * NOISE_SPACING * (np.abs(x0) + 1.0)
    t = rng.uniform(-1.0, 1.0, NOISE_POINTS)
    values = np.array([f(x0 + tj * d) for tj in t])
    centred = values - values.mean()
    residual = centred - np.polyval(np.polyfit(t, centred, NOISE_DEGREE), t)
    sigma = math.sqrt(float(np.sum(residual**2)) / (NOISE_POINTS - NOISE_DEGREE - 1))
    return max(sigma, float(np.finfo(np.float64).eps) * max(1.0, abs(values[0])))


def numerical_grad(f: Callable[[np.ndarray], float], x0: np.ndarray, h: float = STEP) -> FiniteDifferences:
    """Five-point central differences ``(8(f₊₁ − f₋₁) − (f₊₂ − f₋₂)) / 12h`` (``f₊ₖ = f(x + k·h·eᵢ)``) for every
    element of host array ``x0``.

    Their truncation error is ~h⁴·f⁽⁵⁾/30, far below rounding (the three-point rule's h²·f‴/6 is not,
    where the gradient itself is as small as h²: a penalty at its minimum). Each entry carries the
    noise of four evaluations of ``f``, ``σ·√130 / 12h``, so the whole vector's rounding error has a
    norm near ``√n·σ·√130 / 12h``; ``allowance`` admits ``NOISE_SIGMAS`` times that.
    """
    x0 = np.asarray(x0, dtype=np.float64)
    grad = np.zeros_like(x0)
    for i in np.ndindex(*x0.shape):
        x = x0.copy()
        values = []
        for k in (1, -1, 2, -2):
            x[i] = x0[i] + k * h
            values.append(f(x))
        grad[i] = (8 * (values[0] - values[1]) - (values[2] - values[3])) / (12 * h)
    grad = grad.view(FiniteDifferences)
    grad.allowance = NOISE_SIGMAS * math.sqrt(x0.size) * loss_noise(f, x0) * math.sqrt(130) / (12 * h)
    return grad


def assert_close_grad(analytic: np.ndarray, numeric: np.ndarray, what: str, tol: float = TOL) -> None:
    """Fail with a readable message when the error beyond ``numeric``'s rounding allowance exceeds ``tol``."""
    allowance = getattr(numeric, "allowance", 0.0)
    err = rel_error(analytic, numeric, allowance)
    assert err < tol, (
        f"{what}: relative error {err:.3e} >= {tol:.0e} beyond a rounding allowance of {allowance:.1e}"
        f"\nanalytic={np.asarray(analytic)}\nnumeric={np.asarray(numeric)}"
    )


def projection_loss(out: np.ndarray, r: np.ndarray) -> float:
    """``L = sum(out * R)`` on the host in float64."""
    return float(np.sum(np.asarray(out, np.float64) * r))


def network_grads(
    net: Sequential,
    x: np.ndarray,
    r: np.ndarray,
    before_forward: Callable[[], None] | None = None,
) -> dict[str, np.ndarray]:
    """Analytic and numerical gradients of ``L = sum(net(x) * R)`` w.r.t. the flat parameters and ``x``.

    ``before_forward`` runs before every forward pass (e.g. reseeding the
    generator so Dropout draws the same mask each time). Returns host float64
    arrays under ``"params"``, ``"params_fd"``, ``"x"``, ``"x_fd"``. The
    network's parameters are restored afterwards.
    """
    backend = net.backend
    p0 = to_numpy(net.params).astype(np.float64)  # astype copies: p0 never aliases the live buffer

    def forward(params: np.ndarray, x_host: np.ndarray) -> np.ndarray:
        net.params[...] = backend.asarray(params, dtype=net.params.dtype)
        if before_forward is not None:
            before_forward()
        return to_numpy(net.forward(backend.asarray(x_host, dtype=net.params.dtype)))

    forward(p0, x)
    net.zero_grad()
    dx = net.backward(backend.asarray(r, dtype=net.params.dtype))
    grads = {"params": to_numpy(net.grads).astype(np.float64), "x": to_numpy(dx).astype(np.float64)}
    grads["params_fd"] = numerical_grad(lambda p: projection_loss(forward(p, x), r), p0)
    grads["x_fd"] = numerical_grad(lambda xx: projection_loss(forward(p0, xx), r), x)
    net.params[...] = backend.asarray(p0, dtype=net.params.dtype)
    return grads


def check_network(
    net: Sequential,
    x: np.ndarray,
    r: np.ndarray,
    before_forward: Callable[[], None] | None = None,
    tol: float = TOL,
) -> None:
    """Assert that ``backward`` matches central differences, for the parameters and for the input."""
    g = network_grads(net, x, r, before_forward)
    assert_close_grad(g["params"], g["params_fd"], "parameter gradient", tol)
    assert_close_grad(g["x"], g["x_fd"], "input gradient", tol)


def conditioning(net: Sequential, x: np.ndarray) -> tuple[float, float]:
    """How safe finite differences are at ``x``: ``(distance to the nearest kink, min batch variance
    of any training-mode BatchNorm input)``; ``inf`` where the network has no such layer.

    The distance to a kink is the smallest |input| of any (Leaky)ReLU and the smallest gap between
    a Maxout unit's best and second-best piece. Within a few ``STEP`` of a kink the perturbation
    crosses it, and a BatchNorm column with almost no spread makes the normalisation nearly
    singular; either one makes a numerical derivative meaningless, so callers ``assume`` these
    are comfortably large. (Runs the layers one by one; in training mode
    this nudges BatchNorm running statistics, which training-mode outputs ignore.)
    """
    backend = net.backend
    h = backend.asarray(x, dtype=net.params.dtype)
    kink, var = np.inf, np.inf
    for layer in net.layers:
        host = to_numpy(h).astype(np.float64)
        if isinstance(layer, (ReLU, LeakyReLU)) and host.size:
            kink = min(kink, float(np.min(np.abs(host))))
        if isinstance(layer, Maxout) and layer.pieces > 1 and host.size:
            top2 = np.sort(host.reshape(host.shape[0], -1, layer.pieces), axis=2)[..., -2:]
            kink = min(kink, float(np.min(top2[..., 1] - top2[..., 0])))
        if isinstance(layer, BatchNorm) and layer.training:
            var = min(var, float(np.min(np.var(host, axis=0))))
        h = layer.forward(h)
    return kink, var


def random_array(seed: int, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    """Standard-normal host float64 values, reproducible from ``seed``."""
    return scale * np.random.default_rng(seed).standard_normal(shape)


def random_net(backend, layers: list, seed: int, param_scale: float = 1.0) -> Sequential:
    """A float64 :class:`Sequential` on ``backend`` whose whole flat parameter buffer is random.

    Random (not initial) values make e.g. BatchNorm's γ and β non-trivial, so
    every term of every gradient formula is exercised.
    """
    net = Sequential(layers, backend, dtype="float64", seed=seed)
    if net.n_params:
        values = random_array(seed + 1, (net.n_params,), param_scale)
        net.params[...] = backend.asarray(values, dtype=net.params.dtype)
    return net


def assert_backward_accumulates(backend, net, backward, shape) -> None:
    """``backward`` (a layer's or the network's) adds into ``net.grads`` and leaves ``dy`` alone.

    Two calls must sum to what each gives after ``zero_grad``, and non-zero gradients are
    required where the network has parameters, else "adds up" would prove nothing.
    """
    dy1_host, dy2_host = random_array(1, shape), random_array(2, shape)
    dy1, dy2 = backend.asarray(dy1_host), backend.asarray(dy2_host)
    alone = []
    for dy in (dy1, dy2):
        net.zero_grad()
        backward(dy)
        alone.append(to_numpy(net.grads).copy())
    net.zero_grad()
    backward(dy1)
    backward(dy2)
    np.testing.assert_allclose(to_numpy(net.grads), alone[0] + alone[1], rtol=1e-12, atol=1e-12)
    if net.n_params:
        assert np.any(alone[0] != 0) and np.any(alone[1] != 0)
    np.testing.assert_array_equal(to_numpy(dy1), dy1_host)
    np.testing.assert_array_equal(to_numpy(dy2), dy2_host)


def assert_skips_param_grads(backend, net, backward, dy) -> None:
    """``backward(dy, need_dparams=False)`` leaves ``net.grads`` as it was and returns the same ``dx``
    as a full backward (up to rounding: a network may sum in another order)."""
    net.zero_grad()
    full_dx = to_numpy(backward(dy)).copy()
    sentinel = random_array(9, (net.n_params,))
    net.grads[...] = backend.asarray(sentinel)
    dx = backward(dy, need_dparams=False)
    np.testing.assert_array_equal(to_numpy(net.grads), sentinel)
    np.testing.assert_allclose(to_numpy(dx), full_dx, rtol=1e-14, atol=1e-15)
