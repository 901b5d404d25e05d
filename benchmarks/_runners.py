"""What ``bench_step.py`` times: a step of each backend or peer, and the GEMM floor of each library.

A :class:`Runner` does ``n`` steps and returns their durations: host timers on a CPU, CUDA
events on a GPU. Peers that cannot run here raise :class:`Unavailable` with the reason.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _gemms import Gemm

from tinygan import GAN, VAE, VAE_PRESETS
from tinygan.backend import BackendError, get_backend
from tinygan.models.config import GANConfig

DATA_SHAPE = (28, 28)


class Runner:
    """Something to time: ``run(n)`` does ``n`` steps and returns their durations in seconds."""

    def __init__(
        self, name: str, step: Callable[[], Any], device: str, sync: Callable[[], None], compiles: bool = False
    ) -> None:
        self.name, self.step, self.device, self.sync = name, step, device, sync
        self.samples: list[float] = []
        self.compiles = compiles  # its first call compiles the step: timed apart, as ``compile_s``
        self.compile_s: float | None = None

    def compile(self) -> None:
        """Run the first step, which compiles, and keep its duration apart from the samples."""
        if self.compiles and self.compile_s is None:
            self.compile_s = self.run(1)[0]

    def run(self, n: int) -> list[float]:
        out = []
        for _ in range(n):
            tic = time.perf_counter()
            self.step()
            out.append(time.perf_counter() - tic)
        return out


class EventRunner(Runner):
    """A GPU runner timed with CUDA events recorded around every step on the current stream."""

    def __init__(
        self,
        name: str,
        step: Callable[[], Any],
        sync: Callable[[], None],
        new_event: Callable[[], Any],
        elapsed_ms: Callable[[Any, Any], float],
    ) -> None:
        super().__init__(name, step, "cuda", sync)
        self.new_event, self.elapsed_ms = new_event, elapsed_ms

    def run(self, n: int) -> list[float]:
        events = [(self.new_event(), self.new_event()) for _ in range(n)]
        self.sync()
        for start, end in events:
            start.record()
            self.step()
            end.record()
        self.sync()
        return [self.elapsed_ms(start, end) / 1e3 for start, end in events]


def _cupy_event_runner(name: str, step: Callable[[], Any]) -> EventRunner:
    import cupy

    def sync() -> None:
        cupy.cuda.get_current_stream().synchronize()

    return EventRunner(name, step, sync, cupy.cuda.Event, cupy.cuda.get_elapsed_time)


def _torch_event_runner(name: str, step: Callable[[], Any]) -> EventRunner:
    import torch

    return EventRunner(
        name,
        step,
        torch.cuda.synchronize,
        lambda: torch.cuda.Event(enable_timing=True),
        lambda a, b: a.elapsed_time(b),
    )


class Unavailable(Exception):
    """This backend cannot run here; the message says why."""


def _inputs(
    batch: int, latent: int, n_pool: int = 4, seed: int = 0, low: float = -1.0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """A few host batches (real in [low, 1], z or ε ~ N(0, I)), cycled so consecutive steps see different data."""
    rng = np.random.default_rng(seed)
    dim = math.prod(DATA_SHAPE)
    return [
        (
            rng.uniform(low, 1, (batch, dim)).astype(np.float32),
            rng.standard_normal((batch, latent), np.float32),
        )
        for _ in range(n_pool)
    ]


def _classes(model: GAN | VAE, rows: int, seed: int) -> tuple:
    """The batch's classes as a step's third input, for a conditional GAN; nothing for other models."""
    k = getattr(model.config, "n_classes", 0)
    return (model.backend.asarray(np.random.default_rng(seed).integers(0, k, rows)),) if k else ()


def build_model(preset: str, backend: str, batch: int, overrides: dict | None = None) -> GAN | VAE:
    """The GAN or VAE of ``preset`` for Fashion-MNIST-shaped data at batch size ``batch``."""
    cls = VAE if preset in VAE_PRESETS else GAN
    return cls.from_preset(preset, DATA_SHAPE, backend=backend, seed=0, batch_size=batch, **(overrides or {}))


def _cycler(pool: list[Any], fn: Callable[..., Any]) -> Callable[[], Any]:
    state = {"i": 0}

    def step() -> Any:
        i = state["i"] = (state["i"] + 1) % len(pool)
        return fn(*pool[i])

    return step


def make_tinygan_runner(
    backend: str, model: str, batch: int, overrides: dict | None = None, name: str | None = None
) -> tuple[Runner, GAN]:
    """A runner of ``GAN.train_step`` on ``backend`` ("numpy", "cupy" or "cupy-graph"), ``overrides`` on the preset.

    On "cupy-graph" the first call runs eagerly, the second records the step as a CUDA graph
    (both within the warm-up), and the timed calls replay it.
    """
    try:
        gan = build_model(model, backend, batch, overrides)
    except BackendError as e:  # no CuPy, no driver or no device: the message says which
        raise Unavailable(str(e)) from None
    be = gan.backend
    if backend == "cupy-graph" and not be.records_steps:
        raise Unavailable("cuBLAS cannot be called directly here, so the step cannot be recorded")
    rows = batch * getattr(gan.config, "n_critic", 1)
    pool = [
        (be.asarray(r, dtype=gan.dtype), be.asarray(z, dtype=gan.dtype), *_classes(gan, rows, i))
        for i, (r, z) in enumerate(_inputs(rows, gan.config.latent_dim, low=0.0 if isinstance(gan, VAE) else -1.0))
    ]
    name = name or backend
    if be.on_gpu:
        return _cupy_event_runner(name, _cycler(pool, gan.train_step)), gan
    return Runner(name, _cycler(pool, gan.train_step), "cpu", be.synchronize), gan


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


_THREADS: int | None = None  # set by --threads; None means all cores
_LIMITER: Any = None


def threads() -> int:
    """Threads the CPU rows use: --threads, else every core."""
    return _THREADS or cores()


def set_threads(n: int) -> None:
    """Use ``n`` threads for numpy's BLAS (threadpoolctl) and for PyTorch's intra-op pool, on ``n`` cores.

    XLA sizes its own thread pool from the machine and has no setting for it, so the process is
    also pinned to ``n`` cores (where the OS allows): the threads a peer starts later share them.
    """
    global _THREADS, _LIMITER
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise SystemExit("--threads needs threadpoolctl: pip install 'tinygan[bench]'") from None
    _THREADS = n
    _LIMITER = threadpool_limits(limits=n, user_api="blas")  # held for the life of the process
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:n])


def import_torch() -> Any:
    """PyTorch with its intra-op threads set to the core count (numpy's BLAS uses them all) or --threads."""
    try:
        import torch
    except ImportError as e:
        raise Unavailable(f"PyTorch is not importable ({e})") from None
    threads = _THREADS or cores()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch


def make_torch_runner(backend: str, model: str, batch: int) -> Runner:
    """A runner of the PyTorch twin (see ``_torch_peer.py``): "torch-cpu" and "torch-cuda" eager,
    "torch-compile" the same step through ``torch.compile`` on the CPU (compiled by its first calls)."""
    torch = import_torch()
    device = "cuda" if backend == "torch-cuda" else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise Unavailable("PyTorch sees no CUDA device")
    from _torch_peer import TorchGAN, TorchVAE

    if model in VAE_PRESETS:
        peer, low = TorchVAE(build_model(model, "numpy", batch), device), 0.0
    else:
        peer, low = TorchGAN.from_config(GANConfig.from_preset(model, DATA_SHAPE, batch_size=batch), device), -1.0
    pool = [
        (torch.from_numpy(r).to(device), torch.from_numpy(z).to(device))
        for r, z in _inputs(batch, peer.config.latent_dim, low=low)
    ]
    train_step = torch.compile(peer.train_step) if backend == "torch-compile" else peer.train_step
    step = _cycler(pool, train_step)
    if device == "cuda":
        return _torch_event_runner(backend, step)
    return Runner(backend, step, "cpu", lambda: None, compiles=backend == "torch-compile")


def make_jax_runner(backend: str, model: str, batch: int) -> Runner:
    """A runner of the JAX twin (see ``_jax_peer.py``): the whole step as one ``jax.jit`` program on the CPU."""
    try:
        import jax
    except ImportError as e:
        raise Unavailable(f"JAX is not importable ({e})") from None
    from _jax_peer import JaxGAN

    config = GANConfig.from_preset(model, DATA_SHAPE, batch_size=batch)
    if config.architecture != "mlp":
        raise Unavailable(f"the JAX twin has dense layers only, not the {config.architecture} convolutions")
    peer = JaxGAN.from_config(config)
    cpu = jax.devices("cpu")[0]
    pool = [(jax.device_put(r, cpu), jax.device_put(z, cpu)) for r, z in _inputs(batch, config.latent_dim)]
    step = _cycler(pool, lambda r, z: peer.block(peer.train_step(r, z)))
    return Runner(backend, step, "cpu", lambda: None, compiles=True)


# -- the floor: the step's GEMMs alone ----------------------------------------------------------


def _operands(gemms: list[Gemm], alloc: Callable[[tuple[int, int]], Any], transpose: Callable[[Any], Any]) -> list:
    """Preallocated (A, B, C) per GEMM, with A or B a transposed view as the engine passes them."""
    ops = []
    for g in gemms:
        if g.layout == "nn":  # x (M×K) @ W (K×N)
            a, b = alloc((g.m, g.k)), alloc((g.k, g.n))
        elif g.layout == "tn":  # xᵀ where x is (K×M), @ dy (K×N)
            a, b = transpose(alloc((g.k, g.m))), alloc((g.k, g.n))
        else:  # "nt": dy (M×K) @ Wᵀ where W is (N×K)
            a, b = alloc((g.m, g.k)), transpose(alloc((g.n, g.k)))
        ops.append((a, b, alloc((g.m, g.n))))
    return ops


def make_floor_runner(lib: str, gemms: list[Gemm]) -> Runner:
    """A runner that does one step's GEMMs into preallocated outputs on ``lib``.

    ``lib``: "numpy", "cupy", "torch-cpu" or "torch-cuda".
    """
    name = f"floor:{lib}"
    if lib in ("numpy", "cupy"):
        xp = get_backend(lib).xp
        rng = np.random.default_rng(1)
        ops = _operands(gemms, lambda s: xp.asarray(rng.standard_normal(s, np.float32)), lambda a: a.T)
        matmul = xp.matmul

        def step() -> None:
            for a, b, c in ops:
                matmul(a, b, out=c)

        return _cupy_event_runner(name, step) if lib == "cupy" else Runner(name, step, "cpu", lambda: None)
    torch = import_torch()
    device = "cuda" if lib == "torch-cuda" else "cpu"
    ops = _operands(gemms, lambda s: torch.randn(s, dtype=torch.float32, device=device), lambda a: a.t())
    tmatmul = torch.matmul

    def tstep() -> None:
        for a, b, c in ops:
            tmatmul(a, b, out=c)

    return _torch_event_runner(name, tstep) if device == "cuda" else Runner(name, tstep, "cpu", lambda: None)
