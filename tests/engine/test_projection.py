"""The projection discriminator's head: its backward (a scatter-add into the class table, written as a
matrix product) against central differences in float64, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import GRAD_SETTINGS, assert_backward_accumulates, check_network, conditioning, random_array, random_net
from hypothesis import assume, given
from hypothesis import strategies as st

from tinygan import Dense, LeakyReLU
from tinygan.backend import to_numpy
from tinygan.engine.layers import ProjectionHead


def _net(backend, seed, n_in, width, classes, labels):
    net = random_net(backend, [Dense(n_in, width), LeakyReLU(0.2), ProjectionHead(width, classes)], seed)
    net.layers[-1].set_labels(backend.asarray(labels))
    return net


@GRAD_SETTINGS
@given(seed=st.integers(0, 2**31), n=st.integers(1, 6), n_in=st.integers(1, 4), width=st.integers(1, 5),
       classes=st.integers(1, 4), pack=st.integers(1, 3))
def test_projection_head_gradients(backend, seed, n, n_in, width, classes, pack):
    labels = np.random.default_rng(seed).integers(0, classes, (n, pack))
    net = _net(backend, seed, n_in, width, classes, labels)
    x = random_array(seed + 2, (n, n_in))
    assume(conditioning(net, x)[0] > 1e-3)
    check_network(net, x, random_array(seed + 3, (n, 1)))


def test_the_class_term_is_the_inner_product_with_the_summed_embeddings(backend):
    head = random_net(backend, [ProjectionHead(3, 4)], 1).layers[0]
    labels = np.array([[0, 2], [3, 3]])
    head.set_labels(backend.asarray(labels))
    h = random_array(5, (2, 3))
    a = to_numpy(head.forward(backend.asarray(h)))
    w, b, e = (to_numpy(head.params[k]) for k in ("W", "b", "E"))
    expected = h @ w + b + np.stack([h[0] @ (e[0] + e[2]), h[1] @ (2 * e[3])])[:, None]
    np.testing.assert_allclose(a, expected, rtol=1e-12)


def test_projection_head_backward_accumulates(backend):
    net = _net(backend, 0, 3, 4, 3, np.array([0, 2, 1, 1, 0]))
    net.forward(backend.asarray(random_array(2, (5, 3))))
    assert_backward_accumulates(backend, net, net.backward, (5, 1))


def test_a_wrong_table_gradient_is_caught(backend):
    """The check can fail: E's gradient without its row selection (every class gets every row)."""
    net = _net(backend, 0, 3, 4, 3, np.array([[0], [2], [1], [1]]))
    head = net.layers[-1]
    original = head.backward

    def wrong(da, need_dx=True, need_dparams=True):
        dx = original(da, need_dx, need_dparams)
        if need_dparams:
            head.grads["E"] += head.xp.sum(da * head.h, axis=0)  # spills into classes not in the batch
        return dx

    head.backward = wrong
    with pytest.raises(AssertionError, match="parameter gradient"):
        check_network(net, random_array(2, (4, 3)), random_array(3, (4, 1)))
