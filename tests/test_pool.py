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


def test_training_with_threads_is_bit_for_bit_training_without(threads):
    """The default model (2.0M parameters: Adam and the weight average both split across threads)."""
    results = []
    for n in (1, 3):
        threads(n)
        gan = GAN.from_preset("default", (28, 28), backend="numpy", seed=5, batch_size=8)
        x = np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8)
        gan.fit(x, steps=3, log_every=3)
        results.append(gan.state()[0])
    for name, value in results[0].items():
        np.testing.assert_array_equal(results[1][name], value, err_msg=name)


def test_an_exception_in_a_thread_reaches_the_caller(threads):
    def fail(lo, hi):
        if lo > 0:
            raise ValueError("block failed")

    with pytest.raises(ValueError, match="block failed"):
        pool.BlockPool(2).run(fail, 4 * pool.MIN_PARALLEL)
