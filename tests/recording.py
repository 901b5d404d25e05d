"""A NumPy stand-in that records every array operation a training step performs, with its host values.

A CUDA graph freezes the scalar arguments of the kernels it records. A step can be replayed
exactly only if no value that reaches a kernel changes from step to step except through arrays.
This module makes that checkable on a CPU: :func:`recording_backend` is NumPy whose arrays are
:class:`Recorded`, an ndarray subclass that logs every ufunc and array function called on it --
its name, the shapes and dtypes of its array arguments, and the *values* of everything else.
Two steps whose logs are equal passed the same host values to the same operations.

Like CuPy (and unlike NumPy), results stay arrays: an operation that NumPy would return as a
0-d scalar returns a 0-d :class:`Recorded`, so a value computed on the "device" never turns into
a host number by accident. Reading a value on the host (``float``, ``bool``, ``int``, ``item``)
is logged too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygan.backend import Backend

LOG: list[tuple] | None = None  # the current recording; None records nothing


def _describe(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return ("array", v.shape, str(v.dtype))
    if isinstance(v, (list, tuple)):
        return tuple(_describe(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _describe(x)) for k, x in v.items()))
    if v is None or isinstance(v, (bool, int, float, complex, str, np.generic)):
        return ("value", repr(v))
    if isinstance(v, (type, np.dtype)):
        return ("dtype", str(v))
    return ("object", type(v).__name__)


def _note(name: str, args: Any, kwargs: dict) -> None:
    if LOG is not None:
        LOG.append((name, _describe(args), _describe(kwargs)))


def _plain(v: Any) -> Any:
    if isinstance(v, Recorded):
        return v.view(np.ndarray)
    if isinstance(v, (list, tuple)):
        return type(v)(_plain(x) for x in v)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _wrap(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.view(Recorded)
    if isinstance(v, np.generic):
        return np.asarray(v).view(Recorded)  # stay an array, as on a GPU
    if isinstance(v, tuple):
        return tuple(_wrap(x) for x in v)
    return v


class Recorded(np.ndarray):
    """An ndarray that logs the operations applied to it (see the module docstring)."""

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        _note(f"{ufunc.__name__}.{method}", inputs, kwargs)
        out = kwargs.get("out")
        result = getattr(ufunc, method)(*_plain(inputs), **_plain(kwargs))
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        _note(func.__name__, args, kwargs)
        return _wrap(func(*_plain(args), **_plain(kwargs)))

    def __array_namespace__(self, api_version: Any = None) -> RecordingNumpy:
        return NAMESPACE  # arrays made from these (an optimizer's moments) are recorded too

    def _host_read(self, kind: str) -> Any:
        _note(f"host read: {kind}", (self,), {})
        return getattr(self.view(np.ndarray), kind)()

    def __float__(self) -> float:
        return self._host_read("__float__")

    def __int__(self) -> int:
        return self._host_read("__int__")

    def __bool__(self) -> bool:
        return self._host_read("__bool__")

    def item(self, *args: Any) -> Any:
        _note("host read: item", (self,), {})
        return self.view(np.ndarray).item(*args)


_CREATORS = {"asarray", "zeros", "ones", "empty", "full", "arange", "zeros_like", "ones_like", "empty_like"}


class RecordingNumpy:
    """NumPy's namespace, with arrays made by it :class:`Recorded` (it passes for NumPy: ``out=`` works)."""

    __name__ = "numpy"

    def __getattr__(self, name: str) -> Any:
        attr = getattr(np, name)
        if name not in _CREATORS:
            return attr

        def create(*args: Any, **kwargs: Any) -> Recorded:
            _note(name, args, kwargs)
            return _wrap(np.asarray(attr(*_plain(args), **_plain(kwargs))))

        return create


NAMESPACE = RecordingNumpy()


def recording_backend() -> Backend:
    """NumPy whose every array records what is done to it."""
    return Backend("numpy", NAMESPACE)


def record(fn: Any, *args: Any) -> tuple[Any, list[tuple]]:
    """``fn(*args)`` and the log of array operations it performed."""
    global LOG
    LOG = []
    try:
        result = fn(*args)
        return result, LOG
    finally:
        LOG = None
