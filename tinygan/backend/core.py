"""A backend: an array namespace plus the few operations the array API leaves out.

Random numbers drawn on the backend's own device, host transfers, device synchronisation; the
switch between backends and the reused buffers live beside it in this package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

Array = Any  # an array of the backend's namespace (numpy.ndarray, cupy.ndarray, ...)

BACKENDS = ("numpy", "cupy", "cupy-graph")
ENV_VAR = "TINYGAN_BACKEND"


class BackendError(RuntimeError):
    """A backend was asked for that cannot be used on this machine."""


@dataclass(frozen=True)
class Backend:
    """An array namespace plus the few operations the array API leaves out.

    ``name`` is ``"numpy"``, ``"cupy"``, ``"cupy-graph"`` (CuPy, with the training step recorded
    once as a CUDA graph and replayed: see :mod:`tinygan.backend.cuda`) or ``"array-api-strict"``
    (used by the tests to prove that the engine calls nothing outside the standard). ``matmul``,
    when set, replaces ``xp.matmul`` in the engine's matrix products (``matmul(a, b, out)``).
    """

    name: str
    xp: Any
    matmul: Any = None

    @property
    def on_gpu(self) -> bool:
        return self.name in ("cupy", "cupy-graph")

    @property
    def records_steps(self) -> bool:
        """True when training steps are to be recorded once and replayed (``cupy-graph``)."""
        return self.name == "cupy-graph"

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
        if self.on_gpu:
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
        if backend.on_gpu:
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
        if self.backend.on_gpu:
            return {"kind": "cupy"}  # CuPy does not expose its state; resume reseeds instead
        return self._gen.bit_generator.state

    def set_state(self, state: dict, fallback_seed: int = 0) -> None:
        """Restore a state from :meth:`get_state`.

        Where the state could not be saved (CuPy), reseed with ``fallback_seed`` instead, so a
        resumed run continues with fresh numbers rather than replaying the stream from its start.
        """
        if self.backend.on_gpu:
            self._gen = self.backend.xp.random.default_rng(fallback_seed)  # a recorded step re-records
        elif state.get("bit_generator") == "PCG64":
            self._gen.bit_generator.state = state
        else:  # saved where the state could not be kept (CuPy): continue with fresh numbers, as there
            self._gen = np.random.default_rng(fallback_seed)


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
