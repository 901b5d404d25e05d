"""The training step recorded once as a CUDA graph and replayed (backend ``cupy-graph``).

A small model's step on a GPU is a few hundred short kernels, and launching them from Python
costs more than running them. A CUDA graph records the kernels of one step once; replaying it
is one launch. What may be recorded, as CuPy 13 and 14 (the versions the ``cuda12``/``cuda13``
extras install) stand, read from CuPy's source and issue tracker:

* **Stream capture**: ``Stream.begin_capture()`` / ``end_capture()`` record what is queued on a
  non-blocking stream into a ``cupy.cuda.Graph``; CuPy captures in relaxed mode so that its
  memory pool may still grow (``cudaMalloc``) while recording.
* **Elementwise, reduction and CUB kernels**, CuPy's own and ``ElementwiseKernel`` ones (the
  fused Adam update), are plain kernel launches: recordable.
* **cuBLAS**: CuPy refuses every cuBLAS call during capture (``cublas.setStream`` raises
  ``NotImplementedError: calling cuBLAS API during stream capture is currently unsupported``;
  CuPy issue #6290 tracks each library), so ``cupy.matmul`` cannot be recorded. cuBLAS itself
  supports capture as long as it allocates nothing while recording. tinygan therefore calls
  ``cublasGemmEx`` itself (:class:`CublasGemm`, through ctypes, on its own handle) with the
  arguments ``cupy.matmul`` passes (32-bit compute, the default tensor-op algorithm), host
  pointer mode with constant α = 1, β = 0, and a workspace it allocates up front and sets again
  after every ``cublasSetStream`` (which resets it). The same call serves the eager first step,
  so recorded and unrecorded steps run the same GEMM code.
* **Random numbers**: cuRAND's host API is refused too, but ``cupy.random.default_rng()`` (the
  Generator API, which tinygan uses) draws with CuPy's own kernels from a state kept in device
  memory: recordable, and each replay advances the state, so a replay draws exactly the numbers
  the eager step would have drawn.
* **Memory**: every array the recorded step allocates, temporaries and outputs, comes from a
  memory pool private to the graph, so nothing allocated later can be handed an address the
  graph writes to. Buffers the step reuses from earlier steps (workspaces, parameters, optimizer
  state) are kept alive by the recorded step for as long as it exists.
* **Host values**: a kernel's scalar arguments are frozen when recorded. Everything that changes
  from step to step -- Adam's step size and bias corrections, the decayed learning rates, the
  weight of the moving average, the step count -- is computed on the device from 0-d arrays
  (see :mod:`tinygan.engine.optim`, :mod:`tinygan.models.averaging`,
  :meth:`tinygan.models.gan.GANModel.learning_rates`);
  the host values that do reach kernels (learning rates, label targets) are part of the
  recording's key, and a change records the step again.

:class:`RecordedStep` runs a step function eagerly on its first call (which compiles kernels and
allocates persistent buffers), records it on the second and replays it from then on. Where
recording is impossible it says why, once, and runs the step eagerly.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .core import Array, Backend

WORKSPACE_BYTES = 32 << 20  # cuBLAS's own default on Hopper
_CUDA_R_32F, _CUDA_R_64F = 0, 1
_COMPUTE = {_CUDA_R_32F: 68, _CUDA_R_64F: 70}  # CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_64F
_GEMM_DEFAULT, _GEMM_DEFAULT_TENSOR_OP = -1, 99


class CaptureWarning(UserWarning):
    """The step cannot be recorded as a CUDA graph here; it runs uncaptured."""


def graph_backend(cupy_backend: Backend) -> Backend:
    """The ``cupy-graph`` backend: CuPy with a recordable matrix product, or plain CuPy with a warning."""
    try:
        gemm = CublasGemm(cupy_backend.xp)
    except (OSError, AttributeError, RuntimeError) as e:
        warnings.warn(f"backend 'cupy-graph': cuBLAS cannot be called directly here ({e}); "
                      "using 'cupy' without CUDA graphs", CaptureWarning, stacklevel=3)
        return cupy_backend
    return replace(cupy_backend, name="cupy-graph", matmul=gemm)


def _cublas_path() -> str:
    """The file of the cuBLAS library CuPy has loaded (it is loaded by asking CuPy for a handle)."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1]
                if os.path.basename(path).startswith("libcublas.so"):
                    return path
    except OSError:
        pass
    found = ctypes.util.find_library("cublas")
    if found is None:
        raise OSError("libcublas is not loaded and not found on the library path")
    return found


class CublasGemm:
    """``out = a @ b`` for 2-D float32/float64 CuPy arrays by ``cublasGemmEx``, recordable in a CUDA graph.

    Operands may be C-contiguous or transposed views (F-contiguous), as the engine passes them;
    anything else is copied first. ``out`` must be C-contiguous; it is allocated when omitted.
    """

    def __init__(self, cupy: Any) -> None:
        self.cupy = cupy
        cupy.cuda.device.get_cublas_handle()  # makes CuPy load cuBLAS, so its file can be found
        self.lib = ctypes.CDLL(_cublas_path())
        self.handle = ctypes.c_void_p()
        _check(self.lib.cublasCreate_v2(ctypes.byref(self.handle)), "cublasCreate")
        self.workspace = cupy.empty(WORKSPACE_BYTES, dtype=cupy.uint8)
        major = int(cupy.cuda.Device().compute_capability[:-1] or 0)
        self.algo = _GEMM_DEFAULT_TENSOR_OP if major >= 8 else _GEMM_DEFAULT
        self.lib.cublasGemmEx.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int] + [ctypes.c_int] * 3 + [
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
            ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
        ]
        self._one = {_CUDA_R_32F: ctypes.c_float(1.0), _CUDA_R_64F: ctypes.c_double(1.0)}
        self._zero = {_CUDA_R_32F: ctypes.c_float(0.0), _CUDA_R_64F: ctypes.c_double(0.0)}
        self._stream: int | None = None

    def _bind_stream(self) -> None:
        stream = self.cupy.cuda.get_current_stream().ptr
        if stream != self._stream:  # setting the stream resets the workspace: set it again
            _check(self.lib.cublasSetStream_v2(self.handle, ctypes.c_void_p(stream)), "cublasSetStream")
            ws = ctypes.c_void_p(self.workspace.data.ptr)
            _check(self.lib.cublasSetWorkspace_v2(self.handle, ws, ctypes.c_size_t(WORKSPACE_BYTES)),
                   "cublasSetWorkspace")
            self._stream = stream

    def _operand(self, a: Array) -> tuple[Array, int, int]:
        """(array, cuBLAS op, leading dimension) of a row-major operand seen from column-major cuBLAS."""
        if a.flags.c_contiguous:
            return a, 0, max(a.strides[0] // a.itemsize, a.shape[1], 1)
        if a.flags.f_contiguous:
            return a, 1, max(a.strides[1] // a.itemsize, a.shape[0], 1)
        a = self.cupy.ascontiguousarray(a)
        return a, 0, max(a.shape[1], 1)

    def __call__(self, a: Array, b: Array, out: Array | None = None) -> Array:
        cp = self.cupy
        (m, k), n = a.shape, b.shape[1]
        dtype = cp.result_type(a.dtype, b.dtype)
        if out is None:
            out = cp.empty((m, n), dtype=dtype)
        kind = {cp.dtype(cp.float32): _CUDA_R_32F, cp.dtype(cp.float64): _CUDA_R_64F}.get(cp.dtype(dtype))
        if kind is None or a.dtype != b.dtype or out.dtype != dtype or not out.flags.c_contiguous:
            return cp.matmul(a, b, out=out)  # not a case the engine meets; eager only
        if m == 0 or n == 0 or k == 0:
            out.fill(0)
            return out
        self._bind_stream()
        a, op_a, lda = self._operand(a)
        b, op_b, ldb = self._operand(b)
        # Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: B's buffer comes first.
        status = self.lib.cublasGemmEx(
            self.handle, op_b, op_a, n, m, k, ctypes.byref(self._one[kind]),
            b.data.ptr, kind, ldb, a.data.ptr, kind, lda, ctypes.byref(self._zero[kind]),
            out.data.ptr, kind, n, _COMPUTE[kind], self.algo,
        )
        _check(status, "cublasGemmEx")
        return out


def _check(status: int, what: str) -> None:
    if status != 0:
        raise RuntimeError(f"{what} failed with cuBLAS status {status}")


class RecordedStep:
    """``fn(*inputs) -> outputs`` recorded once and replayed, with inputs copied into buffers of its own.

    With ``graphs=True`` (CuPy): the first call runs ``fn`` eagerly, the second records it as a
    CUDA graph (allocations from a private pool) and launches it, later calls copy their inputs
    into the recorded input buffers and launch the graph again. The outputs are the recorded
    arrays, overwritten by each call: read or copy them before the next. ``key()`` names the host
    values ``fn`` depends on; when it changes, or the inputs change shape, the step is recorded
    anew. ``keep()`` lists arrays the step reuses from call to call (workspaces), kept alive while
    the recording lives. With ``graphs=False`` (NumPy) nothing is recorded: every call after the
    first runs ``fn`` on the input buffers, which is what a replay does.
    """

    def __init__(self, fn: Callable[..., Any], graphs: bool, key: Callable[[], Any] = lambda: None,
                 keep: Callable[[], list] = list) -> None:
        self.fn, self.graphs, self.key, self.keep = fn, graphs, key, keep
        self.calls, self.failed = 0, None
        self.recorded: tuple | None = None  # (key, input shapes) of the current recording
        self.graph: Any = None

    def __call__(self, *inputs: Array) -> Any:
        self.calls += 1
        if self.calls == 1 or self.failed is not None:
            return self.fn(*inputs)
        signature = (self.key(), tuple(None if x is None else tuple(x.shape) for x in inputs))
        if signature != self.recorded:
            self._record(inputs, signature)
            if self.failed is not None:
                return self.fn(*inputs)
        else:
            for buffer, x in zip(self.buffers, inputs, strict=True):
                if x is not None and x is not buffer:
                    buffer[...] = x
        if not self.graphs:
            return self.fn(*self.buffers)
        self.graph.launch(stream=self.cupy.cuda.get_current_stream())
        return self.outputs

    def _record(self, inputs: tuple, signature: tuple) -> None:
        self.buffers = [None if x is None else x.copy() for x in inputs]
        self.recorded = signature
        if not self.graphs:
            return
        import cupy

        self.cupy = cupy
        self.pool = cupy.cuda.MemoryPool()
        stream = cupy.cuda.Stream(non_blocking=True)
        try:
            with cupy.cuda.using_allocator(self.pool.malloc), stream:
                stream.begin_capture()
                try:
                    self.outputs = self.fn(*self.buffers)
                finally:
                    self.graph = stream.end_capture()
        except Exception as e:  # CUDA and CuPy raise assorted types; the step still runs uncaptured
            self.failed = f"{type(e).__name__}: {e}"
            warnings.warn(f"the training step cannot be recorded as a CUDA graph here ({self.failed}); "
                          "it runs uncaptured", CaptureWarning, stacklevel=3)
            return
        self.kept = self.keep()
