"""Array backends: the one module that knows NumPy from CuPy.

Engine code asks a :class:`Backend` for its array namespace ``xp`` and writes
every array operation against it, using only functions that NumPy 2 and CuPy
share (the Python array API standard). Everything backend-specific -- random
number generators, host transfers, device synchronisation, fused kernels --
lives here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

Array = Any  # an array of the backend's namespace (numpy.ndarray, cupy.ndarray, ...)

BACKENDS = ("numpy", "cupy")
ENV_VAR = "TINYGAN_BACKEND"


class BackendError(RuntimeError):
    """A backend was asked for that cannot be used on this machine."""


@dataclass(frozen=True)
class Backend:
    """An array namespace plus the few operations the array API leaves out.

    ``name`` is ``"numpy"``, ``"cupy"`` or ``"array-api-strict"`` (used by the
    tests to prove that the engine calls nothing outside the standard).
    """

    name: str
    xp: Any

    def asarray(self, a: Any, dtype: Any = None) -> Array:
        """Copy host data (or a scalar) onto this backend."""
        if self.name == "array-api-strict":
            a = np.asarray(a)
        return self.xp.asarray(a, dtype=dtype)

    def to_numpy(self, a: Array) -> np.ndarray:
        """Copy an array to the host. Use at I/O boundaries only: on a GPU it waits for the device."""
        return to_numpy(a)

    def synchronize(self) -> None:
        """Wait until queued device work has finished (no-op on the CPU), for honest timing."""
        if self.name == "cupy":
            self.xp.cuda.get_current_stream().synchronize()

    def dtype(self, name: str) -> Any:
        """The namespace's dtype object for ``"float32"`` or ``"float64"``."""
        if name not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {name!r}")
        return getattr(self.xp, name)

    def rng(self, seed: int | None) -> Random:
        """A seeded random generator that makes its numbers on this backend's device."""
        return Random(self, seed)


class Random:
    """Seeded random numbers drawn on the backend's own device.

    NumPy uses PCG64; CuPy uses its own device generator, so the GPU never
    waits for host-made random numbers. The state can be saved and restored
    (exactly on NumPy) for resumable training.
    """

    def __init__(self, backend: Backend, seed: int | None) -> None:
        self.backend = backend
        if backend.name == "cupy":
            self._gen = backend.xp.random.default_rng(seed)
        else:
            self._gen = np.random.default_rng(seed)

    def _draw(self, method: str, shape: tuple[int, ...], dtype: Any, out: Array | None = None) -> Array:
        if self.backend.name == "array-api-strict":  # test namespace: draw on the host, then wrap
            return self.backend.xp.asarray(getattr(self._gen, method)(shape), dtype=dtype)
        if out is not None and self.backend.name == "numpy":  # same numbers, written into ``out``
            return getattr(self._gen, method)(shape, dtype=dtype, out=out)
        return getattr(self._gen, method)(shape, dtype=dtype)

    def normal(self, shape: tuple[int, ...], dtype: Any) -> Array:
        """Standard normal samples of ``shape``."""
        return self._draw("standard_normal", shape, dtype)

    def uniform(self, shape: tuple[int, ...], dtype: Any, out: Array | None = None) -> Array:
        """Uniform samples in [0, 1) of ``shape``; ``out`` (NumPy only) receives them without allocating.

        Use the return value: on other backends ``out`` is ignored.
        """
        return self._draw("random", shape, dtype, out)

    def permutation(self, n: int) -> Array:
        """A random permutation of ``range(n)`` as an int64 array on the device."""
        xp = self.backend.xp
        return xp.argsort(self.uniform((n,), xp.float64))

    def get_state(self) -> dict:
        """The generator's state as plain JSON-able data."""
        if self.backend.name == "cupy":
            return {"kind": "cupy"}  # CuPy does not expose its state; resume reseeds instead
        return self._gen.bit_generator.state

    def set_state(self, state: dict, fallback_seed: int = 0) -> None:
        """Restore a state from :meth:`get_state`.

        Where the state could not be saved (CuPy), reseed with ``fallback_seed`` instead, so a
        resumed run continues with fresh numbers rather than replaying the stream from its start.
        """
        if self.backend.name == "cupy":
            self._gen = self.backend.xp.random.default_rng(fallback_seed)
        elif state.get("bit_generator") == "PCG64":
            self._gen.bit_generator.state = state
        else:  # saved where the state could not be kept (CuPy): continue with fresh numbers, as there
            self._gen = np.random.default_rng(fallback_seed)


def get_backend(name: str | Backend | None = None) -> Backend:
    """Resolve a backend by name; ``None`` reads ``$TINYGAN_BACKEND`` (default ``"numpy"``)."""
    if isinstance(name, Backend):
        return name
    name = name or os.environ.get(ENV_VAR) or "numpy"
    if name == "numpy":
        return _NUMPY
    if name == "cupy":
        return _cupy_backend()
    if name == "array-api-strict":
        import array_api_strict

        return Backend("array-api-strict", array_api_strict)
    source = f"${ENV_VAR}" if name == os.environ.get(ENV_VAR) else "backend"
    raise BackendError(f"unknown {source} {name!r}: expected one of {', '.join(BACKENDS)}")


def _cupy_backend() -> Backend:
    try:
        import cupy
    except ImportError as e:
        raise BackendError(
            "backend 'cupy' needs CuPy: pip install 'tinygan[cuda12]' or 'tinygan[cuda13]' "
            f"(matching your CUDA driver) -- import failed: {e}"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDA raises its own error types when no driver is present
        raise BackendError(
            f"backend 'cupy': CuPy is installed but CUDA is not usable ({e}); "
            "check the NVIDIA driver with nvidia-smi and that CuPy matches its CUDA version"
        ) from None
    if count == 0:
        raise BackendError("backend 'cupy': no CUDA device is visible (check CUDA_VISIBLE_DEVICES)")
    return Backend("cupy", cupy)


def cupy_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        _cupy_backend()
    except BackendError:
        return False
    return True


def to_numpy(a: Array) -> np.ndarray:
    """Any backend's array (or plain Python data) as a host NumPy array: a copy from a GPU, a view
    where possible on the CPU."""
    if isinstance(a, np.ndarray):
        return a
    if type(a).__module__.startswith("cupy"):
        return a.get()
    if hasattr(a, "__dlpack__") and not isinstance(a, np.generic):
        return np.from_dlpack(a)
    return np.asarray(a)  # NumPy scalars (a loss, a sum), lists, Python numbers


def namespace_of(a: Array) -> Any:
    """The array namespace an array belongs to.

    The array API's ``__array_namespace__`` where the array has it; CuPy's arrays (before
    CuPy 15) do not, so their module is returned by type.
    """
    if hasattr(a, "__array_namespace__"):
        return a.__array_namespace__()
    module = type(a).__module__.split(".")[0]
    if module == "cupy":
        import cupy

        return cupy
    raise TypeError(f"not an array of a supported namespace: {type(a).__name__}")


_NUMPY = Backend("numpy", np)


# -- reusing memory on the hot path ------------------------------------------------------------
#
# A training step on NumPy spends as much time on fresh temporaries (allocation, and the page
# faults of touching new memory) as on arithmetic, once its arrays outgrow the allocator's caches.
# Layers and optimizers therefore write intermediate results into arrays they keep from step to
# step, through ``out=`` -- which NumPy and CuPy functions take and the array API does not. The
# two helpers below keep the engine's math written once: on other namespaces ``Workspace.get``
# returns ``None`` and the ``Ops`` functions ignore ``out`` and return a new array.


def writes_out(xp: Any) -> bool:
    """True when ``xp``'s functions accept ``out=`` (NumPy and CuPy)."""
    return xp is np or getattr(xp, "__name__", "") == "cupy"


class Ops:
    """``xp``'s elementwise and matrix functions with an optional ``out=`` array.

    On NumPy and CuPy the result is written into ``out`` when one is given; on other namespaces
    ``out`` is ignored and a new array is returned. Either way, use the return value.
    """

    def __init__(self, xp: Any) -> None:
        self.xp = xp
        self.native = writes_out(xp)

    def subtract(self, a: Array | float, b: Array | float, out: Array | None = None) -> Array:
        return self.xp.subtract(a, b, out=out) if self.native else a - b

    def multiply(self, a: Array, b: Array | float, out: Array | None = None) -> Array:
        return self.xp.multiply(a, b, out=out) if self.native else a * b

    def divide(self, a: Array, b: Array | float, out: Array | None = None) -> Array:
        return self.xp.divide(a, b, out=out) if self.native else a / b

    def sqrt(self, a: Array, out: Array | None = None) -> Array:
        return self.xp.sqrt(a, out=out) if self.native else self.xp.sqrt(a)

    def matmul(self, a: Array, b: Array, out: Array | None = None) -> Array:
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


_CUPY_ADAM: Any = None


def fused_adam(xp: Any) -> Any:
    """CuPy only: one elementwise kernel doing Adam's whole update (else ``None``).

    Called as ``kernel(g, b1, 1 - b1, b2, 1 - b2, step_size, c2, eps, params, m, v)`` with the
    same meaning as in :class:`tinygan.optim.Adam`; it updates ``params``, ``m`` and ``v`` in
    place. On a GPU this replaces a dozen kernel launches, each a full pass over the buffers.
    """
    global _CUPY_ADAM
    if getattr(xp, "__name__", "") != "cupy":
        return None
    if _CUPY_ADAM is None:
        _CUPY_ADAM = xp.ElementwiseKernel(
            "T g, T b1, T a1, T b2, T a2, T step_size, T c2, T eps",
            "T p, T m, T v",
            """
            m = b1 * m + a1 * g;
            v = b2 * v + a2 * (g * g);
            p -= step_size * (m / (sqrt(v) * c2 + eps));
            """,
            "tinygan_adam",
        )
    return _CUPY_ADAM
