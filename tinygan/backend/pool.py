"""Elementwise work on every core: a small persistent thread pool over blocks of flat buffers.

NumPy's ufuncs release the GIL, so several threads can run the same sequence of ufuncs on their
own slices of a buffer at once. An elementwise result does not depend on where a buffer is cut
(every element meets the same operations in the same order), so the blocked, threaded path gives
the same bits as one pass over the whole buffer; nothing here ever cuts a sum.

Each thread takes one contiguous range and walks it in blocks of :data:`BLOCK` elements, running
all the passes of an update (Adam's dozen ufuncs, say) on one block while it sits in the core's
cache before moving to the next -- on one thread too, where that alone saves most of the memory
traffic. Threads pay off only on large buffers: below :data:`MIN_PARALLEL` elements the calling
thread does the whole range itself.

The number of threads follows the BLAS thread count (NumPy's matrix products already use that
many cores), or ``$TINYGAN_THREADS``; with one thread nothing is threaded.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .core import namespace_of

BLOCK = 32 * 1024  # elements: a few float32 buffers of this size fit in a core's L2 cache
MIN_PARALLEL = 256 * 1024  # below this, waking another thread costs more than it saves

_POOL: BlockPool | None = None
_LOCAL = threading.local()  # each thread's scratch buffers, by array type and dtype


def _blas_threads() -> int:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
        if counts:
            return max(counts)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return os.cpu_count() or 1


def thread_count() -> int:
    """Threads for elementwise work: ``$TINYGAN_THREADS``, else the BLAS thread count."""
    value = os.environ.get("TINYGAN_THREADS", "")
    return max(1, int(value)) if value.isdigit() else _blas_threads()


class BlockPool:
    """Runs ``fn(start, stop)`` over ``range(n)`` in blocks of about ``block`` elements, on up to ``threads``."""

    def __init__(self, threads: int, block: int | None = None) -> None:
        self.threads, self.block = max(1, threads), max(1, BLOCK if block is None else block)
        self.pid = os.getpid()
        self.executor = ThreadPoolExecutor(self.threads - 1) if self.threads > 1 else None

    def run(self, fn: Callable[[int, int], None], n: int, width: int = 1) -> None:
        """``fn(lo, hi)`` for consecutive blocks covering ``range(n)``; returns when all are done.

        ``n`` counts rows of ``width`` elements each (1 for a flat buffer): a block holds about
        ``block`` elements, and threads start only for :data:`MIN_PARALLEL` elements or more.
        """
        parts = self.threads if self.executor is not None and n * width >= MIN_PARALLEL else 1
        step = max(1, self.block // max(width, 1))
        bounds = [n * i // parts for i in range(parts + 1)]
        futures = [self.executor.submit(_walk, fn, bounds[i], bounds[i + 1], step) for i in range(1, parts)]
        _walk(fn, bounds[0], bounds[1], step)
        for f in futures:
            f.result()


def _walk(fn: Callable[[int, int], None], lo: int, hi: int, step: int) -> None:
    for start in range(lo, hi, step):
        fn(start, min(start + step, hi))


def block_scratch(like: Any) -> Any:
    """Scratch space the size of the 1-D ``like``, private to the calling thread and reused for every block
    it walks: an update's temporaries then stay in the core's cache, where a scratch buffer as large as
    the whole array would stream through memory beside it."""
    buffers = _LOCAL.__dict__.setdefault("buffers", {})
    key = (type(like), str(like.dtype))
    buf = buffers.get(key)
    if buf is None or buf.shape[0] < like.shape[0]:
        buf = buffers[key] = namespace_of(like).empty((max(like.shape[0], BLOCK),), dtype=like.dtype)
    return buf[: like.shape[0]]


def block_pool() -> BlockPool:
    """The process's pool (made on first use, and again in a forked child, whose threads are gone)."""
    global _POOL
    if _POOL is None or _POOL.pid != os.getpid():
        _POOL = BlockPool(thread_count())
    return _POOL


def set_threads(n: int) -> None:
    """Use ``n`` threads for elementwise work from now on (1 turns threading off)."""
    global _POOL
    _POOL = BlockPool(n)


def set_pool(pool: BlockPool | None) -> None:
    """Use ``pool`` for elementwise work from now on (``None``: the default one, made on next use)."""
    global _POOL
    _POOL = pool
