"""Array backends: the one package that knows NumPy from CuPy.

Engine code asks a :class:`Backend` for its array namespace ``xp`` and writes every array
operation against it, using only functions that NumPy 2 and CuPy share (the Python array API
standard). Everything backend-specific lives here: random number generators, host transfers and
device synchronisation (:mod:`.core`), buffers reused from step to step (:mod:`.ops`), the thread
pool for elementwise work (:mod:`.pool`), fused GPU kernels (:mod:`.kernels`), and the training
step recorded as a CUDA graph (:mod:`.cuda`).
"""

from __future__ import annotations

import os

from .core import _NUMPY, BACKENDS, ENV_VAR, Array, Backend, BackendError, Random, namespace_of, to_numpy
from .kernels import kernels_for
from .ops import Ops, Workspace, unit_floats, writes_out

__all__ = [
    "BACKENDS", "ENV_VAR", "Array", "Backend", "BackendError", "Ops", "Random", "Workspace",
    "cupy_available", "get_backend", "kernels_for", "namespace_of", "to_numpy", "unit_floats", "writes_out",
]


def get_backend(name: str | Backend | None = None) -> Backend:
    """Resolve a backend by name; ``None`` reads ``$TINYGAN_BACKEND`` (default ``"numpy"``)."""
    if isinstance(name, Backend):
        return name
    name = name or os.environ.get(ENV_VAR) or "numpy"
    if name == "numpy":
        return _NUMPY
    if name == "cupy":
        return _cupy_backend(name)
    if name == "cupy-graph":
        from .cuda import graph_backend

        return graph_backend(_cupy_backend(name))
    if name == "array-api-strict":
        import array_api_strict

        return Backend("array-api-strict", array_api_strict)
    source = f"${ENV_VAR}" if name == os.environ.get(ENV_VAR) else "backend"
    raise BackendError(f"unknown {source} {name!r}: expected one of {', '.join(BACKENDS)}")


def _cupy_backend(name: str = "cupy") -> Backend:
    try:
        import cupy
    except ImportError as e:
        raise BackendError(
            f"backend {name!r} needs CuPy: pip install 'tinygan[cuda12]' or 'tinygan[cuda13]' "
            f"(matching your CUDA driver) -- import failed: {e}"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDA raises its own error types when no driver is present
        raise BackendError(
            f"backend {name!r}: CuPy is installed but CUDA is not usable ({e}); "
            "check the NVIDIA driver with nvidia-smi and that CuPy matches its CUDA version"
        ) from None
    if count == 0:
        raise BackendError(f"backend {name!r}: no CUDA device is visible (check CUDA_VISIBLE_DEVICES)")
    return Backend("cupy", cupy)


def cupy_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        _cupy_backend()
    except BackendError:
        return False
    return True


