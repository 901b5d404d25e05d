"""Elementwise work on several threads changes no result: blocks cover every element once, and
training with threads is bit for bit training without them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygan import GAN
from tinygan.backend import pool


@pytest.fixture
def threads():
    """Set the pool's thread count for a test, and restore the default afterwards."""
    yield pool.set_threads
    pool._POOL = None


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 3 * pool.MIN_PARALLEL), k=st.integers(1, 4))
def test_blocks_cover_every_element_exactly_once(n, k):
    seen = np.zeros(n, np.int64)

    def visit(lo, hi):
        assert 0 <= lo < hi <= n and hi - lo <= pool.BLOCK
        seen[lo:hi] += 1

    pool.BlockPool(k).run(visit, n)
    assert (seen == 1).all()


@pytest.mark.parametrize("batch", [8, 512], ids=["small-batch", "large-batch"])
def test_training_with_threads_is_bit_for_bit_training_without(threads, batch):
    """The default model (2.0M parameters: Adam and the weight average split across threads; at batch
    512 the activations, BatchNorm and dropout too)."""
    results = []
    for n in (1, 3):
        threads(n)
        gan = GAN.from_preset("default", (28, 28), backend="numpy", seed=5, batch_size=batch)
        x = np.random.default_rng(0).integers(0, 256, (2 * batch, 28, 28), dtype=np.uint8)
        gan.fit(x, steps=2, log_every=2)
        results.append(gan.state()[0])
    for name, value in results[0].items():
        np.testing.assert_array_equal(results[1][name], value, err_msg=name)


def test_an_exception_in_a_thread_reaches_the_caller(threads):
    def fail(lo, hi):
        if lo > 0:
            raise ValueError("block failed")

    with pytest.raises(ValueError, match="block failed"):
        pool.BlockPool(2).run(fail, 4 * pool.MIN_PARALLEL)


@pytest.mark.parametrize("threads_n", [1, 3])
def test_layers_cut_into_row_blocks_give_the_same_bits(monkeypatch, threads, threads_n):
    """Every layer's elementwise passes, run over blocks of a few rows, against one block of all rows."""
    from tinygan import BatchNorm, Dense, Dropout, LeakyReLU, Sequential, Tanh

    def run(block):
        monkeypatch.setattr(pool, "BLOCK", block)
        monkeypatch.setattr(pool, "MIN_PARALLEL", 1 if block < 100 else 10**12)
        threads(threads_n)
        net = Sequential([Dense(6, 9), BatchNorm(9), LeakyReLU(0.2), Dropout(0.3), Dense(9, 5), Tanh()],
                         "numpy", seed=2)
        x = np.random.default_rng(1).standard_normal((37, 6)).astype(np.float32)
        y = net.forward(x)
        net.zero_grad()
        dx = net.backward(np.random.default_rng(2).standard_normal((37, 5)).astype(np.float32))
        net.eval()
        y_eval = net.forward(x)
        return y, dx, net.grads.copy(), y_eval

    whole, cut = run(10**9), run(20)  # 20 elements: two rows of 9 per block, an odd last block
    for a, b in zip(whole, cut, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("threads_n", [1, 3])
def test_the_vae_loss_cut_into_row_blocks_gives_the_same_bits(monkeypatch, threads, threads_n):
    from tinygan.engine.elbo import bernoulli_nll

    rng = np.random.default_rng(3)
    logits = (8 * rng.standard_normal((37, 9))).astype(np.float32)
    x = rng.uniform(0, 1, (37, 9)).astype(np.float32)

    def run(block):
        monkeypatch.setattr(pool, "BLOCK", block)
        monkeypatch.setattr(pool, "MIN_PARALLEL", 1 if block < 100 else 10**12)
        threads(threads_n)
        loss, grad = bernoulli_nll(logits, x)
        return loss, grad.copy()

    (loss, grad), (cut_loss, cut_grad) = run(10**9), run(20)
    assert loss == cut_loss
    np.testing.assert_array_equal(grad, cut_grad)


def test_vae_training_with_threads_is_bit_for_bit_training_without(threads):
    from tinygan import VAE

    results = []
    for n in (1, 3):
        threads(n)
        vae = VAE.from_preset("vae", (28, 28), backend="numpy", seed=5, batch_size=512)
        x = np.random.default_rng(0).integers(0, 256, (1024, 28, 28), dtype=np.uint8)
        vae.fit(x, steps=2, log_every=2)
        results.append(vae.state()[0])
    for name, value in results[0].items():
        np.testing.assert_array_equal(results[1][name], value, err_msg=name)
