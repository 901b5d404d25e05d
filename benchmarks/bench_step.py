"""Time tinygan's full training step against PyTorch and against the GEMM floor.

    python benchmarks/bench_step.py [--backends numpy,cupy,cupy-graph,torch-cpu,torch-cuda]
        [--batch-sizes 64,256,1024,4096] [--model default|reference|article|vae]
        [--json PATH] [--steps N] [--warmup N] [--max-seconds S] [--threads N]

On a CPU take numbers on a quiet machine, with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset for
this command only where they are set for old OpenBLAS builds (``env -u OPENBLAS_CORETYPE -u
OPENBLAS_L2_SIZE python benchmarks/bench_step.py``); the table header shows the OpenBLAS kernel
that ran. Each row records the share of CPU that other processes used while it was measured
(``foreign_cpu_load``); with two BLAS threads a busy machine can slow a step tenfold.

For each batch size every requested backend runs ``GAN.train_step`` (``VAE.train_step`` with
``--model vae``), or its PyTorch twin (see ``_torch_peer.py``), on float32 data of Fashion-MNIST's
shape. Besides the step, the *floor* is timed: only the matrix products that one tinygan step must
do, same shapes and layouts, into preallocated outputs, on the same array library. A step can not
be faster than its floor, so ``ratio_to_floor`` says how much time goes to everything else
(elementwise layers, losses, Adam, Python). GFLOP/s counts ``2·M·N·K`` per GEMM of the step.

Timing: CPU backends use ``time.perf_counter`` around each step; GPU backends record a pair of
CUDA events around each step on the current stream and read them after a synchronisation, so
asynchronous launches are never mistaken for finished work. The backends (and floors) of one
batch size are measured in interleaved rounds, so a burst of load from other processes on a
shared machine hits all of them alike. Reported: median, min, max and the quartiles (p25, p75).

Backends that cannot run here (no CuPy/CUDA, no PyTorch) still get a row, marked with the reason.
``cupy-graph`` records tinygan's whole step as one CUDA graph and replays it (see
``tinygan/backend/cuda.py``); if recording fails at run time the row's note says so.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # run from a checkout without installing tinygan
    sys.path.insert(0, str(_REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import write_json  # noqa: E402

from tinygan import GAN, VAE, VAE_PRESETS  # noqa: E402
from tinygan.backend import BackendError, cupy_available, get_backend  # noqa: E402
from tinygan.config import preset_config  # noqa: E402
from tinygan.layers import Dense  # noqa: E402

ALL_BACKENDS = ("numpy", "cupy", "cupy-graph", "torch-cpu", "torch-cuda")
DATA_SHAPE = (28, 28)
DEVICE_OF = {"numpy": "cpu", "torch-cpu": "cpu", "cupy": "cuda", "cupy-graph": "cuda", "torch-cuda": "cuda"}
TORCH_OF_DEVICE = {"cpu": "torch-cpu", "cuda": "torch-cuda"}
ROW_KEYS = (
    "backend",
    "model",
    "batch_size",
    "median_ms",
    "min_ms",
    "max_ms",
    "samples_per_s",
    "gflops",
    "floor_ms",
    "ratio_to_floor",
    "ratio_to_torch",
)


# ============================================================================ GEMM accounting


@dataclass(frozen=True)
class Gemm:
    """One matrix product ``C (M×N) = op(A) (M×K) · op(B) (K×N)`` of a training step.

    ``layout`` says which operand is used transposed, as the engine calls it:
    ``"nn"`` forward ``x W``, ``"tn"`` weight gradient ``xᵀ dy``, ``"nt"`` input gradient ``dy Wᵀ``.
    """

    what: str
    m: int
    n: int
    k: int
    layout: str

    @property
    def flops(self) -> int:
        return 2 * self.m * self.n * self.k


def _dense_layers(net: Any) -> list[tuple[int, Dense]]:
    return [(i, layer) for i, layer in enumerate(net.layers) if isinstance(layer, Dense)]


def _forward(net: Any, rows: int, tag: str) -> list[Gemm]:
    return [Gemm(f"{tag} fwd {d.n_in}x{d.n_out}", rows, d.n_out, d.n_in, "nn") for _, d in _dense_layers(net)]


def _backward(net: Any, rows: int, tag: str, need_dx: bool, need_dparams: bool) -> list[Gemm]:
    """The GEMMs of ``Sequential.backward(dy, need_dx, need_dparams)`` for ``rows`` rows."""
    out = []
    for i, d in reversed(_dense_layers(net)):
        if need_dparams:
            out.append(Gemm(f"{tag} dW {d.n_in}x{d.n_out}", d.n_in, d.n_out, rows, "tn"))
        if need_dx or i > 0:  # Sequential skips only the first layer's input gradient
            out.append(Gemm(f"{tag} dx {d.n_in}x{d.n_out}", rows, d.n_in, d.n_out, "nt"))
    return out


def step_gemms(gan: GAN, batch: int) -> list[Gemm]:
    """Exactly the matrix products ``gan.train_step`` performs for a batch of ``batch`` samples.

    G forward once; D forward on real, backward without D's first-layer input gradient; the same
    on fake; then D forward on fake again and backward through D without D's weight gradients;
    G backward without G's first-layer input gradient.
    """
    rows_d = batch // gan.config.pack
    G, D = gan.G, gan.D
    return [
        *_forward(G, batch, "G"),
        *_forward(D, rows_d, "D(real)"),
        *_backward(D, rows_d, "D(real)", need_dx=False, need_dparams=True),
        *_forward(D, rows_d, "D(fake)"),
        *_backward(D, rows_d, "D(fake)", need_dx=False, need_dparams=True),
        *_forward(D, rows_d, "D(G(z))"),
        *_backward(D, rows_d, "D(G(z))", need_dx=True, need_dparams=False),
        *_backward(G, batch, "G", need_dx=False, need_dparams=True),
    ]


def vae_step_gemms(vae: VAE, batch: int) -> list[Gemm]:
    """Exactly the matrix products ``vae.train_step`` performs for a batch of ``batch`` samples.

    Encoder and decoder forward; decoder backward with every input gradient (``dz`` feeds the
    reparameterisation); encoder backward without its first layer's input gradient.
    """
    return [
        *_forward(vae.enc, batch, "enc"),
        *_forward(vae.dec, batch, "dec"),
        *_backward(vae.dec, batch, "dec", need_dx=True, need_dparams=True),
        *_backward(vae.enc, batch, "enc", need_dx=False, need_dparams=True),
    ]


def model_gemms(model: GAN | VAE, batch: int) -> list[Gemm]:
    """The matrix products of one training step of ``model``, a GAN or a VAE."""
    return vae_step_gemms(model, batch) if isinstance(model, VAE) else step_gemms(model, batch)


def build_model(preset: str, backend: str, batch: int) -> GAN | VAE:
    """The GAN or VAE of ``preset`` for Fashion-MNIST-shaped data at batch size ``batch``."""
    cls = VAE if preset in VAE_PRESETS else GAN
    return cls.from_preset(preset, DATA_SHAPE, backend=backend, seed=0, batch_size=batch)


def step_flops(gan: GAN, batch: int) -> int:
    """FLOPs of the step's GEMMs, ``Σ 2·M·N·K``."""
    return sum(g.flops for g in step_gemms(gan, batch))


# ============================================================================ runners


class Runner:
    """Something to time: ``run(n)`` does ``n`` steps and returns their durations in seconds."""

    def __init__(self, name: str, step: Callable[[], Any], device: str, sync: Callable[[], None]) -> None:
        self.name, self.step, self.device, self.sync = name, step, device, sync
        self.samples: list[float] = []

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


def _cycler(pool: list[Any], fn: Callable[..., Any]) -> Callable[[], Any]:
    state = {"i": 0}

    def step() -> Any:
        i = state["i"] = (state["i"] + 1) % len(pool)
        return fn(*pool[i])

    return step


def make_tinygan_runner(backend: str, model: str, batch: int) -> tuple[Runner, GAN | VAE]:
    """A runner of ``GAN.train_step`` (or ``VAE.train_step``) on ``backend`` ("numpy", "cupy" or "cupy-graph").

    On "cupy-graph" the first call runs eagerly, the second records the step as a CUDA graph
    (both within the warm-up), and the timed calls replay it.
    """
    try:
        gan = build_model(model, backend, batch)
    except BackendError as e:  # no CuPy, no driver or no device: the message says which
        raise Unavailable(str(e)) from None
    be = gan.backend
    if backend == "cupy-graph" and not be.records_steps:
        raise Unavailable("cuBLAS cannot be called directly here, so the step cannot be recorded")
    pool = [
        (be.asarray(r, dtype=gan.dtype), be.asarray(z, dtype=gan.dtype))
        for r, z in _inputs(batch, gan.config.latent_dim, low=0.0 if isinstance(gan, VAE) else -1.0)
    ]
    if be.on_gpu:
        return _cupy_event_runner(backend, _cycler(pool, gan.train_step)), gan
    return Runner(backend, _cycler(pool, gan.train_step), "cpu", be.synchronize), gan


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


_THREADS: int | None = None  # set by --threads; None means all cores
_LIMITER: Any = None


def set_threads(n: int) -> None:
    """Use ``n`` threads for numpy's BLAS (threadpoolctl) and for PyTorch's intra-op pool."""
    global _THREADS, _LIMITER
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise SystemExit("--threads needs threadpoolctl: pip install 'tinygan[bench]'") from None
    _THREADS = n
    _LIMITER = threadpool_limits(limits=n, user_api="blas")  # held for the life of the process


def import_torch() -> Any:
    """PyTorch with its intra-op threads set to the core count (numpy's BLAS uses them all) or --threads."""
    try:
        import torch
    except ImportError as e:
        raise Unavailable(f"PyTorch is not importable ({e})") from None
    threads = _THREADS or _cores()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch


def make_torch_runner(backend: str, model: str, batch: int) -> Runner:
    """A runner of the PyTorch twin (see ``_torch_peer.py``) on "torch-cpu" or "torch-cuda"."""
    torch = import_torch()
    device = "cuda" if backend == "torch-cuda" else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise Unavailable("PyTorch sees no CUDA device")
    from _torch_peer import TorchGAN, TorchVAE

    if model in VAE_PRESETS:
        peer, low = TorchVAE(build_model(model, "numpy", batch), device), 0.0
    else:
        peer, low = TorchGAN.from_config(preset_config(model, DATA_SHAPE, batch_size=batch), device), -1.0
    pool = [
        (torch.from_numpy(r).to(device), torch.from_numpy(z).to(device))
        for r, z in _inputs(batch, peer.config.latent_dim, low=low)
    ]
    step = _cycler(pool, peer.train_step)
    if device == "cuda":
        return _torch_event_runner(backend, step)
    return Runner(backend, step, "cpu", lambda: None)


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


# ============================================================================ measuring


def summarize(samples: list[float]) -> dict[str, float]:
    """Median, min, max and quartiles of step durations (seconds in, milliseconds out)."""
    ms = sorted(s * 1e3 for s in samples)
    q = statistics.quantiles(ms, n=4, method="inclusive") if len(ms) > 1 else [ms[0]] * 3
    return {
        "median_ms": statistics.median(ms),
        "min_ms": ms[0],
        "max_ms": ms[-1],
        "p25_ms": q[0],
        "p75_ms": q[2],
        "n_steps": len(ms),
    }


def measure(
    runners: list[Runner],
    steps: int,
    warmup: int,
    max_seconds: float | None = None,
    rounds: int = 5,
    min_steps: int = 5,
    pause: float = 0.05,
) -> None:
    """Warm every runner up, then time ``steps`` steps each in ``rounds`` interleaved rounds.

    With ``max_seconds``, stop early once each runner has at least ``min_steps`` samples and the
    whole measurement has taken that long (the slowest batch sizes on a CPU).
    """
    for r in runners:
        r.run(warmup)
        r.sync()
    per_round = max(1, math.ceil(steps / rounds))
    start = time.perf_counter()
    while any(len(r.samples) < steps for r in runners):
        for r in runners:
            n = min(per_round, steps - len(r.samples))
            if n > 0:
                time.sleep(pause)  # let the previous runner's spinning BLAS/OpenMP threads go idle
                r.samples.extend(r.run(n))
        if (
            max_seconds is not None
            and time.perf_counter() - start > max_seconds
            and all(len(r.samples) >= min_steps for r in runners)
        ):
            break


def _cpu_snapshot() -> tuple[float, float, float] | None:
    """(busy CPU seconds of the whole machine, CPU seconds of this process, wall time); Linux only."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    busy = sum(ticks[:3]) + sum(ticks[5:8])  # user nice system, irq softirq steal (not idle, iowait)
    return busy / os.sysconf("SC_CLK_TCK"), time.process_time(), time.perf_counter()


def _foreign_load(a: tuple | None, b: tuple | None) -> float | None:
    """Share of all CPUs that *other* processes kept busy between two snapshots (0 = quiet machine)."""
    if a is None or b is None or b[2] <= a[2]:
        return None
    other = (b[0] - a[0]) - (b[1] - a[1])
    return max(0.0, other / ((b[2] - a[2]) * (os.cpu_count() or 1)))


def _floor_lib(backend: str) -> str:
    return "cupy" if backend.startswith("cupy") else backend


def bench_batch(
    backends: list[str],
    model: str,
    batch: int,
    steps: int,
    warmup: int,
    max_seconds: float | None = None,
    log: Callable[[str], None] = lambda s: None,
    pause: float = 0.05,
) -> list[dict]:
    """Rows (one per backend) for one batch size."""
    rows: dict[str, dict[str, Any]] = {}
    runners: dict[str, Runner] = {}
    gans: dict[str, GAN | VAE] = {}
    for b in backends:
        rows[b] = {k: None for k in ROW_KEYS} | {
            "backend": b,
            "model": model,
            "batch_size": batch,
            "status": "ok",
            "note": "",
        }
        try:
            if b.startswith("torch"):
                runners[b] = make_torch_runner(b, model, batch)
            else:
                runners[b], gans[b] = make_tinygan_runner(b, model, batch)
        except Unavailable as e:
            reason = str(e)
            rows[b]["status"] = "not implemented" if reason.startswith("not implemented") else "unavailable"
            rows[b]["note"] = reason
    # The floor counts tinygan's GEMMs, whichever backend runs; any GAN of the preset defines them.
    reference = next(iter(gans.values()), None) or build_model(model, "numpy", batch)
    gemms = model_gemms(reference, batch)
    flops = sum(g.flops for g in gemms)
    floors: dict[str, Runner] = {}
    for b in runners:
        lib = _floor_lib(b)
        if lib not in floors:
            floors[lib] = make_floor_runner(lib, gemms)
    log(f"batch {batch}: timing {', '.join(runners) or 'nothing'} and floors {', '.join(floors) or '-'}")
    before = _cpu_snapshot()
    measure([*runners.values(), *floors.values()], steps, warmup, max_seconds, pause=pause)
    foreign = _foreign_load(before, _cpu_snapshot())
    floor_stats = {lib: summarize(r.samples) for lib, r in floors.items()}
    for b, r in runners.items():
        s = summarize(r.samples)
        row = rows[b]
        row.update(s)
        row["samples_per_s"] = batch / (s["median_ms"] / 1e3)
        row["gflops"] = flops / (s["median_ms"] / 1e3) / 1e9
        f = floor_stats[_floor_lib(b)]
        row["floor_ms"] = f["median_ms"]
        row["floor_min_ms"], row["floor_max_ms"] = f["min_ms"], f["max_ms"]
        row["floor_gflops"] = flops / (f["median_ms"] / 1e3) / 1e9
        row["ratio_to_floor"] = s["median_ms"] / f["median_ms"]
        row["flops"] = flops
        row["n_gemms"] = len(gemms)
        row["foreign_cpu_load"] = foreign
        if foreign is not None and foreign > 0.1:
            row["note"] = f"busy machine: other processes used {foreign:.0%} of the CPUs"
    _note_unrecorded(rows, gans)
    for b, row in rows.items():
        peer = TORCH_OF_DEVICE[DEVICE_OF[b]]
        if row["status"] == "ok" and peer in runners:
            row["ratio_to_torch"] = row["median_ms"] / rows[peer]["median_ms"]
    return [rows[b] for b in backends]


def _note_unrecorded(rows: dict[str, dict], gans: dict[str, GAN | VAE]) -> None:
    """A step that could not be recorded as a CUDA graph ran eagerly: say so in its row."""
    for b, gan in gans.items():
        failed = [r.failed for r in gan.__dict__.get("_recordings", {}).values() if r.failed]
        if failed:
            rows[b]["note"] = f"not recorded, ran eagerly: {failed[0]}"


# ============================================================================ machine description


def machine_info(backends: list[str] | None = None) -> dict[str, Any]:
    """CPU, cores, BLAS (via threadpoolctl when present), GPU and library versions."""
    import tinygan

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cores": _cores(),
        "cpu_count": os.cpu_count(),
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "numpy": np.__version__,
        "tinygan": tinygan.__version__,
        "openblas_env": {
            k: os.environ.get(k)
            for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
        },
    }
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {
                k: p.get(k)
                for k in (
                    "internal_api",
                    "version",
                    "architecture",
                    "num_threads",
                    "threading_layer",
                    "filepath",
                )
            }
            for p in threadpool_info()
        ]
    except ImportError:
        info["blas"] = "threadpoolctl not installed"
    try:
        import cupy

        info["cupy"] = cupy.__version__
        if cupy_available():
            props = cupy.cuda.runtime.getDeviceProperties(0)
            name = props["name"]
            info["gpu"] = name.decode() if isinstance(name, bytes) else name
            info["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
            info["cuda_driver"] = cupy.cuda.runtime.driverGetVersion()
    except ImportError:
        info["cupy"] = None
    want_torch = backends is None or any(b.startswith("torch") for b in backends)
    try:
        if not want_torch:
            raise Unavailable("not requested")
        torch = import_torch()
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["torch_blas"] = _torch_blas(torch)
        if torch.cuda.is_available():
            info.setdefault("gpu", torch.cuda.get_device_name(0))
            info["torch_cuda"] = torch.version.cuda
    except Unavailable as e:
        info["torch"] = None
        info["torch_note"] = str(e)
    info.setdefault("gpu", None)
    return info


def _torch_blas(torch: Any) -> str:
    """PyTorch's BLAS and parallel backend, e.g. ``"mkl; ATen parallel backend: OpenMP"``."""
    import re

    found = re.search(r"BLAS_INFO=([^,]+)", torch.__config__.show())
    parts = [found.group(1) if found else "unknown"]
    for line in torch.__config__.parallel_info().splitlines():
        if "parallel backend" in line:
            parts.append(line.strip())
    return "; ".join(parts)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ============================================================================ output


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) < 1e4 else f"{v:.0f}"
    return str(v)


def _load(avg: list[float] | None) -> str:
    return "n/a" if not avg else " ".join(f"{x:.2f}" for x in avg)


def markdown_table(result: dict[str, Any]) -> str:
    """The rows as a Markdown table, with a line on the machine above it."""
    m = result["machine"]
    blas = m.get("blas")
    if isinstance(blas, list) and blas:
        blas_s = ", ".join(f"{p['internal_api']} {p['version']} {p['architecture']} ×{p['num_threads']}" for p in blas)
    else:
        blas_s = str(blas)
    lines = [
        f"CPU: {m['cpu']} ({m['cores']} cores), BLAS: {blas_s}; GPU: {m.get('gpu') or 'none'}; "
        f"numpy {m['numpy']}, torch {m.get('torch') or 'absent'}"
        + (f" ({m['torch_threads']} threads, {m.get('torch_blas')})" if m.get("torch_threads") else "")
        + f", cupy {m.get('cupy') or 'absent'}",
        f"Load average at start/end: {_load(m.get('loadavg_start'))} / {_load(m.get('loadavg_end'))}; "
        f"up to {m.get('settings', {}).get('steps')} timed steps per row after "
        f"{m.get('settings', {}).get('warmup')} warm-up steps, interleaved across backends.",
        "",
        "| backend | model | batch | median ms | min–max ms | IQR ms | samples/s | GFLOP/s | floor ms "
        "| ×floor | ×torch | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["rows"]:
        if r["status"] != "ok":
            note = r["note"].split(" -- ")[-1]  # the cause, without the install hint (kept in the JSON)
            lines.append(
                f"| {r['backend']} | {r['model']} | {r['batch_size']} | {r['status']} |  |  |  |  |  |  |  | {note} |"
            )
            continue
        lines.append(
            f"| {r['backend']} | {r['model']} | {r['batch_size']} | {_fmt(r['median_ms'])} "
            f"| {_fmt(r['min_ms'])}–{_fmt(r['max_ms'])} | {_fmt(r['p25_ms'])}–{_fmt(r['p75_ms'])} "
            f"| {_fmt(r['samples_per_s'], 0)} | {_fmt(r['gflops'], 1)} | {_fmt(r['floor_ms'])} "
            f"| {_fmt(r['ratio_to_floor'])} | {_fmt(r['ratio_to_torch'])} | {r['note']} |"
        )
    return "\n".join(lines)


def run(
    backends: list[str],
    batch_sizes: list[int],
    model: str = "default",
    steps: int = 50,
    warmup: int = 5,
    max_seconds: float | None = None,
    log: Callable[[str], None] = lambda s: None,
    pause: float = 0.05,
) -> dict:
    """The whole benchmark: ``{"machine": {...}, "rows": [...]}`` (see the module docstring)."""
    unknown = [b for b in backends if b not in ALL_BACKENDS]
    if unknown:
        raise ValueError(f"unknown backend(s) {', '.join(unknown)}: expected some of {', '.join(ALL_BACKENDS)}")
    machine = machine_info(backends)
    rows: list[dict] = []
    wall = time.perf_counter()
    for batch in batch_sizes:
        rows.extend(bench_batch(backends, model, batch, steps, warmup, max_seconds, log, pause))
    machine["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    machine["bench_seconds"] = time.perf_counter() - wall
    machine["settings"] = {
        "steps": steps,
        "warmup": warmup,
        "max_seconds": max_seconds,
        "dtype": "float32",
        "data_shape": list(DATA_SHAPE),
        "threads": _THREADS or _cores(),
    }
    return {"machine": machine, "rows": rows}


def _csv(kind: Callable[[str], Any]) -> Callable[[str], list]:
    return lambda s: [kind(p.strip()) for p in s.split(",") if p.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--backends",
        type=_csv(str),
        default=list(ALL_BACKENDS),
        help=f"comma-separated, from {','.join(ALL_BACKENDS)} (default: all; those that cannot run here "
        "get a row saying why)",
    )
    p.add_argument("--batch-sizes", type=_csv(int), default=[64, 256, 1024, 4096])
    p.add_argument("--model", default="default", choices=["default", "reference", "article", "vae"])
    p.add_argument("--steps", type=int, default=50, help="timed steps per backend and batch size")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="stop a batch size's measurement after this long (once every backend has 5 steps)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS threads for numpy (via threadpoolctl) and torch intra-op threads (default: all cores)",
    )
    p.add_argument("--json", help="also write the result as JSON here")
    args = p.parse_args(argv)
    if args.threads is not None:
        set_threads(args.threads)
    result = run(
        args.backends,
        args.batch_sizes,
        args.model,
        args.steps,
        args.warmup,
        args.max_seconds,
        log=lambda s: print(s, file=sys.stderr, flush=True),
    )
    print(markdown_table(result))
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
