"""Shared fixtures: every engine test body runs on each backend that is usable here."""

import pytest

from tinygan.backend import cupy_available, get_backend

BACKEND_NAMES = ["numpy", "array-api-strict", "cupy"]


def _param(name):
    marks = []
    if name == "cupy" and not cupy_available():
        marks.append(pytest.mark.skip(reason="cupy backend: CuPy or a CUDA device is not available"))
    return pytest.param(name, marks=marks, id=name)


@pytest.fixture(params=[_param(n) for n in BACKEND_NAMES])
def backend(request):
    """A tinygan Backend: numpy, the strict array-API namespace (portability), and cupy on a GPU."""
    return get_backend(request.param)
