"""Reusing memory on the hot path: arrays kept from step to step, filled through ``out=``.

A training step on NumPy spends as much time on fresh temporaries (allocation, and the page
faults of touching new memory) as on arithmetic, once its arrays outgrow the allocator's caches.
Layers and optimizers therefore write intermediate results into arrays they keep from step to
step, through ``out=`` -- which NumPy and CuPy functions take and the array API does not. The
two helpers below keep the engine's math written once: on other namespaces ``Workspace.get``
returns ``None`` and the ``Ops`` functions ignore ``out`` and return a new array. (Fused CuPy
kernels live in :mod:`.kernels`.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .core import Array


def writes_out(xp: Any) -> bool:
    """True when ``xp``'s functions accept ``out=`` (NumPy and CuPy, or a stand-in named like them)."""
    return xp is np or getattr(xp, "__name__", "") in ("numpy", "cupy")


class Ops:
    """``xp``'s elementwise and matrix functions with an optional ``out=`` array.

    On NumPy and CuPy the result is written into ``out`` when one is given; on other namespaces
    ``out`` is ignored and a new array is returned. Either way, use the return value.
    """

    def __init__(self, xp: Any, matmul: Any = None) -> None:
        self.xp = xp
        self.native = writes_out(xp)
        self._matmul = matmul

    def subtract(self, a: Array | float, b: Array | float, out: Array | None = None) -> Array:
        return self.xp.subtract(a, b, out=out) if self.native else a - b

    def multiply(self, a: Array, b: Array | float, out: Array | None = None) -> Array:
        return self.xp.multiply(a, b, out=out) if self.native else a * b

    def divide(self, a: Array, b: Array | float, out: Array | None = None) -> Array:
        return self.xp.divide(a, b, out=out) if self.native else a / b

    def sum(self, a: Array, axis: int, out: Array | None = None) -> Array:
        return self.xp.sum(a, axis=axis, out=out) if self.native else self.xp.sum(a, axis=axis)

    def sqrt(self, a: Array, out: Array | None = None) -> Array:
        return self.xp.sqrt(a, out=out) if self.native else self.xp.sqrt(a)

    def matmul(self, a: Array, b: Array, out: Array | None = None) -> Array:
        if self._matmul is not None:
            return self._matmul(a, b, out)
        return self.xp.matmul(a, b, out=out) if self.native else a @ b

    def positive_mask(self, x: Array, out: Array | None = None) -> Array:
        """``1`` where ``x > 0``, else ``0``, in ``x``'s dtype (a multiplicative mask)."""
        if self.native and out is not None:
            return self.xp.greater(x, 0, out=out)  # True/False written as 1/0 into a float array
        return self.xp.astype(x > 0, x.dtype)

    def at_least_mask(self, x: Array, threshold: float, out: Array | None = None) -> Array:
        """``1`` where ``x >= threshold``, else ``0``, in ``x``'s dtype."""
        if self.native and out is not None:
            return self.xp.greater_equal(x, threshold, out=out)
        return self.xp.astype(x >= threshold, x.dtype)


class Workspace:
    """Named arrays kept from call to call, so that steady-state training allocates nothing.

    ``get(name, shape, dtype)`` returns the array stored under ``name``, (re)allocated when the
    shape or dtype asked for changes. Its contents are whatever the last user left there. On
    namespaces without ``out=`` support it returns ``None``, which :class:`Ops` treats as "allocate".
    """

    def __init__(self, xp: Any) -> None:
        self.xp = xp
        self.enabled = writes_out(xp)
        self.arrays: dict[str, Array] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any) -> Array | None:
        if not self.enabled:
            return None
        a = self.arrays.get(name)
        if a is None or tuple(a.shape) != tuple(shape) or a.dtype != dtype:
            a = self.arrays[name] = self.xp.empty(shape, dtype=dtype)
        return a


def unit_floats(xp: Any, x: Array, dtype: Any) -> Array:
    """``x`` as floats of ``dtype``: uint8 images scaled to [0, 1], anything else converted as it is."""
    scaled = x.dtype == xp.uint8
    x = xp.astype(x, dtype)
    if scaled:
        x *= 1.0 / 255.0
    return x
