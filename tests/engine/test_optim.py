"""Optimizers: Adam against the paper's formulas, SGD against its rule, state dicts, in-place updates."""

import math

import numpy as np
import pytest
from gradcheck import random_array

from tinygan import SGD, Adam, Sequential, mlp
from tinygan.backend import namespace_of, to_numpy

N = 50
STEPS = 6


def _gradient_sequence(seed, steps=STEPS, n=N):
    """Gradients of very different sizes (so ε matters for some entries), with some exact zeros."""
    rng = np.random.default_rng(seed)
    scales = 10.0 ** rng.uniform(-6, 1, size=n)
    grads = [rng.standard_normal(n) * scales for _ in range(steps)]
    for g in grads:
        g[rng.integers(0, n, size=3)] = 0.0
    return grads


def _buffers(backend, seed, n=N):
    params = backend.asarray(random_array(seed, (n,)))
    grads = backend.xp.zeros_like(params)
    return params, grads


def paper_adam(theta, grads, lr, betas, eps):
    """Adam, Algorithm 1 of Kingma & Ba (2015), written out step by step; returns θ after every step."""
    b1, b2 = betas
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    history = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        history.append(theta)
    return history


ADAM_CASES = [
    {"lr": 2e-4, "betas": (0.5, 0.999), "eps": 1e-8},  # the library's GAN default
    {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8},  # the paper's default
    {"lr": 0.1, "betas": (0.8, 0.99), "eps": 1e-3},  # a large ε: its placement matters
    {"lr": 0.05, "betas": (0.0, 0.5), "eps": 1e-6},
]


def _assert_adam_matches_paper(backend, adam_class, kwargs, seed=0):
    params, grads = _buffers(backend, seed)
    theta0 = to_numpy(params).copy()
    gs = _gradient_sequence(seed + 1)
    opt = adam_class(params, grads, **kwargs)
    for step, (g, expected) in enumerate(zip(gs, paper_adam(theta0, gs, **kwargs), strict=True), start=1):
        grads[...] = backend.asarray(g)
        opt.step()
        np.testing.assert_allclose(
            to_numpy(params), expected, rtol=0, atol=1e-12, err_msg=f"Adam differs at step {step}"
        )
        np.testing.assert_array_equal(to_numpy(grads), g)  # the optimizer never touches gradients
    assert opt.t == len(gs)


@pytest.mark.parametrize("kwargs", ADAM_CASES, ids=lambda k: f"lr={k['lr']}-b={k['betas']}-eps={k['eps']}")
def test_adam_matches_paper(backend, kwargs):
    _assert_adam_matches_paper(backend, Adam, kwargs)


class _AdamWrongCorrection(Adam):
    """Adam with a wrong bias correction ``(c1, c2)`` in place of ``(1 − β₁ᵗ, 1 − β₂ᵗ)``."""

    correction: staticmethod

    def step(self):
        b1, b2 = self.betas
        self.t += 1
        self.m *= b1
        self.m += (1 - b1) * self.grads
        self.v *= b2
        self.v += (1 - b2) * (self.grads * self.grads)
        c1, c2 = self.correction(b1, b2)
        xp = namespace_of(self.params)
        self.params -= self.lr * (self.m / c1) / (xp.sqrt(self.v / c2) + self.eps)


class _AdamOneMinusBetaCorrection(_AdamWrongCorrection):
    """The classic slip: bias correction by ``1 − β`` instead of ``1 − βᵗ``."""

    correction = staticmethod(lambda b1, b2: (1 - b1, 1 - b2))


class _AdamNoCorrection(_AdamWrongCorrection):
    correction = staticmethod(lambda b1, b2: (1.0, 1.0))


@pytest.mark.parametrize("wrong", [_AdamOneMinusBetaCorrection, _AdamNoCorrection], ids=["1-beta", "none"])
def test_wrong_bias_correction_is_caught(backend, wrong):
    with pytest.raises(AssertionError, match="Adam differs at step"):
        _assert_adam_matches_paper(backend, wrong, ADAM_CASES[0])


def test_adam_first_step_is_lr_times_sign(backend):
    """Bias correction makes the first update ``lr · g / (|g| + ε)``: about ``lr`` per entry, whatever |g|."""
    params, grads = _buffers(backend, 0)
    theta0 = to_numpy(params).copy()
    g = _gradient_sequence(1)[0]
    grads[...] = backend.asarray(g)
    Adam(params, grads, lr=0.01, betas=(0.5, 0.999), eps=1e-8).step()
    expected = -0.01 * g / (np.abs(g) + 1e-8)
    np.testing.assert_allclose(to_numpy(params) - theta0, expected, rtol=1e-9, atol=1e-15)


def test_sgd_plain(backend):
    params, grads = _buffers(backend, 0)
    theta = to_numpy(params).copy()
    opt = SGD(params, grads, lr=0.05)
    for g in _gradient_sequence(1):
        grads[...] = backend.asarray(g)
        opt.step()
        theta = theta - 0.05 * g
        np.testing.assert_allclose(to_numpy(params), theta, rtol=0, atol=1e-14)
        np.testing.assert_array_equal(to_numpy(grads), g)


@pytest.mark.parametrize("momentum", [0.5, 0.9])
def test_sgd_momentum(backend, momentum):
    params, grads = _buffers(backend, 0)
    theta = to_numpy(params).copy()
    velocity = np.zeros_like(theta)
    opt = SGD(params, grads, lr=0.05, momentum=momentum)
    for step, g in enumerate(_gradient_sequence(1), start=1):
        grads[...] = backend.asarray(g)
        opt.step()
        velocity = momentum * velocity + g
        theta = theta - 0.05 * velocity
        np.testing.assert_allclose(to_numpy(params), theta, rtol=0, atol=1e-13, err_msg=f"step {step}")
    # momentum really was used: plain SGD on the same gradients ends elsewhere
    plain = to_numpy(_buffers(backend, 0)[0]) - 0.05 * np.sum(_gradient_sequence(1), axis=0)
    assert not np.allclose(to_numpy(params), plain)


def _run(opt, grads, backend, gs):
    for g in gs:
        grads[...] = backend.asarray(g)
        opt.step()


@pytest.mark.parametrize(
    "make",
    [
        lambda p, g: Adam(p, g, lr=0.01, betas=(0.5, 0.999)),
        lambda p, g: SGD(p, g, lr=0.01, momentum=0.9),
    ],
    ids=["adam", "sgd-momentum"],
)
def test_optimizer_state_dict_round_trip(backend, make):
    gs = _gradient_sequence(1, steps=8)
    params, grads = _buffers(backend, 0)
    opt = make(params, grads)
    _run(opt, grads, backend, gs[:4])
    state = opt.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    snapshot = {k: v.copy() for k, v in state.items()}
    theta4 = to_numpy(params).copy()

    resumed_params = backend.asarray(theta4)
    resumed_grads = backend.xp.zeros_like(resumed_params)
    resumed = make(resumed_params, resumed_grads)
    resumed.load_state_dict(state)
    _run(opt, grads, backend, gs[4:])
    _run(resumed, resumed_grads, backend, gs[4:])
    np.testing.assert_array_equal(to_numpy(resumed_params), to_numpy(params))
    for k, v in snapshot.items():  # state_dict() returned copies: later steps did not change them
        np.testing.assert_array_equal(state[k], v)

    # without the state the same steps end elsewhere, so the check above has teeth
    fresh_params = backend.asarray(theta4)
    fresh_grads = backend.xp.zeros_like(fresh_params)
    _run(make(fresh_params, fresh_grads), fresh_grads, backend, gs[4:])
    assert not np.allclose(to_numpy(fresh_params), to_numpy(params))


def test_adam_state_dict_contents(backend):
    params, grads = _buffers(backend, 0)
    opt = Adam(params, grads)
    _run(opt, grads, backend, _gradient_sequence(1, steps=3))
    state = opt.state_dict()
    assert set(state) == {"m", "v", "t"}
    assert int(state["t"]) == 3
    other = Adam(*_buffers(backend, 0))
    other.load_state_dict(state)
    assert other.t == 3
    np.testing.assert_array_equal(to_numpy(other.m), state["m"])
    np.testing.assert_array_equal(to_numpy(other.v), state["v"])


@pytest.mark.parametrize("make", [Adam, SGD], ids=["adam", "sgd"])
def test_optimizer_state_wrong_shape(backend, make):
    opt = make(*_buffers(backend, 0))
    state = {k: (np.zeros(N + 1) if np.ndim(v) else v) for k, v in opt.state_dict().items()}
    with pytest.raises(ValueError, match=r"\(51,\).*\(50,\)"):
        opt.load_state_dict(state)


@pytest.mark.parametrize("make", [Adam, SGD], ids=["adam", "sgd"])
def test_optimizer_updates_network_in_place(backend, make):
    """The optimizer writes into the network's flat buffer, so the layers' views see every update."""
    net = Sequential(mlp([3, 4, 2], batchnorm=True), backend, dtype="float64")
    params_before = to_numpy(net.params).copy()
    w_before = to_numpy(net.layers[0].params["W"]).copy()
    x = backend.asarray(random_array(0, (5, 3)))
    net.zero_grad()
    net.backward(backend.xp.ones_like(net.forward(x)))
    opt = make(net.params, net.grads, lr=0.1)
    buffer = net.params
    opt.step()
    assert net.params is buffer
    assert not np.array_equal(to_numpy(net.params), params_before)
    w = to_numpy(net.layers[0].params["W"])
    np.testing.assert_array_equal(w, to_numpy(net.params)[: w.size].reshape(w.shape))
    assert not np.array_equal(w, w_before)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_keeps_dtype(backend, dtype):
    params = backend.asarray(random_array(0, (N,)), dtype=backend.dtype(dtype))
    grads = backend.asarray(random_array(1, (N,)), dtype=backend.dtype(dtype))
    opt = Adam(params, grads)
    opt.step()
    for a in (opt.params, opt.m, opt.v):
        assert to_numpy(a).dtype == np.dtype(dtype)
    assert math.isfinite(float(np.sum(to_numpy(params))))
