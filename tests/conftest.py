"""Shared fixtures: every engine test body runs on each backend that is usable here."""

import importlib.util

import pytest

from tinygan.backend import cupy_available, get_backend

BACKEND_NAMES = ["numpy", "array-api-strict", "cupy", "cupy-graph"]


def _param(name):
    marks = []
    if name.startswith("cupy") and not cupy_available():
        marks.append(pytest.mark.skip(reason=f"{name} backend: CuPy or a CUDA device is not available"))
    if name == "array-api-strict" and importlib.util.find_spec("array_api_strict") is None:
        marks.append(pytest.mark.skip(reason="array-api-strict is not installed (pip install -e '.[test]')"))
    return pytest.param(name, marks=marks, id=name)


@pytest.fixture(params=[_param(n) for n in BACKEND_NAMES])
def backend(request):
    """A tinygan Backend: numpy, the strict array-API namespace (portability), and on a GPU cupy and
    cupy-graph (CuPy with the matrix products a CUDA graph can record)."""
    return get_backend(request.param)


@pytest.fixture(scope="module")
def numpy_one_blas_thread():
    """In-process runs on NumPy (the backend whose resume is exact), with one BLAS thread: tiny
    matrices gain nothing from threads, which only contend (badly, with other tests running)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYGAN_BACKEND", "numpy")
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            yield
            return
        with threadpool_limits(1):
            yield
