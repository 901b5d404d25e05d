"""Time tinygan's full training step against PyTorch and against the GEMM floor.

    python benchmarks/bench_step.py [--backends numpy,cupy,cupy-graph,torch-cpu,torch-cuda]
        [--batch-sizes 64,256,1024,4096] [--model default|reference|article|dcgan|dcgan-compact|vae|vae-conv]
        [--json PATH] [--steps N] [--warmup N] [--max-seconds S] [--threads N]
        [--variant KEY=VALUE[,KEY=VALUE...]]...

On a CPU take numbers on a quiet machine, with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset for
this command only where they are set for old OpenBLAS builds (``env -u OPENBLAS_CORETYPE -u
OPENBLAS_L2_SIZE python benchmarks/bench_step.py``); the table header shows the OpenBLAS kernel
that ran. Each row records the share of CPU that other processes used while it was measured
(``foreign_cpu_load``); with two BLAS threads a busy machine can slow a step tenfold.

For each batch size every requested backend runs ``GAN.train_step`` (``VAE.train_step`` with
``--model vae``), or its PyTorch twin (see ``_torch_peer.py``), on float32 data of Fashion-MNIST's
shape. Besides the step, the *floor* is
timed: only the matrix products that one tinygan step must do, same shapes and layouts, into
preallocated outputs, on the same array library. A step can not be faster than its floor, so
``ratio_to_floor`` says how much time goes to everything else (elementwise layers, losses, Adam,
Python). GFLOP/s counts ``2·M·N·K`` per GEMM of the step.

Timing: CPU backends use ``time.perf_counter`` around each step; GPU backends record a pair of
CUDA events around each step on the current stream and read them after a synchronisation, so
asynchronous launches are never mistaken for finished work. The backends (and floors) of one
batch size are measured in interleaved rounds, so a burst of load from other processes on a
shared machine hits all of them alike. Reported: median, min, max and the quartiles (p25, p75).

Each ``--variant`` (``GANConfig`` settings over the preset, e.g. ``--variant loss=hinge --variant
loss=wgan-gp,n_critic=5 --variant d_spectral_norm=true``) adds a row per tinygan backend, timed in the
same interleaved rounds as the preset's own step, with its own floor; ``ratio_to_plain`` is its
median over the plain step's. A variant with ``n_critic = k`` does k D updates per step, on k
batches.

Backends that cannot run here (no CuPy/CUDA, no PyTorch) still get a row, marked with the reason.
``cupy-graph`` records tinygan's whole step as one CUDA graph and replays it (see
``tinygan/backend/cuda.py``); if recording fails at run time the row's note says so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # run from a checkout without installing tinygan
    sys.path.insert(0, str(_REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _gemms import Gemm, model_gemms, step_flops, step_gemms, vae_step_gemms  # noqa: E402, F401  (callers use them)
from _report import write_json  # noqa: E402
from _runners import (  # noqa: E402
    DATA_SHAPE,
    Runner,
    Unavailable,
    build_model,
    cores,
    import_torch,
    make_floor_runner,
    make_jax_runner,
    make_tinygan_runner,
    make_torch_runner,
    set_threads,
    threads,
)

from tinygan import GAN, GANConfig  # noqa: E402
from tinygan.backend import cupy_available  # noqa: E402

ALL_BACKENDS = ("numpy", "cupy", "cupy-graph", "torch-cpu", "torch-compile", "jax-cpu", "torch-cuda")
DEVICE_OF = {
    "numpy": "cpu", "torch-cpu": "cpu", "torch-compile": "cpu", "jax-cpu": "cpu",
    "cupy": "cuda", "cupy-graph": "cuda", "torch-cuda": "cuda",
}
PEERS = ("torch-cpu", "torch-compile", "jax-cpu", "torch-cuda")  # other libraries' steps: the plain step only
TORCH_OF_DEVICE = {"cpu": "torch-cpu", "cuda": "torch-cuda"}
ROW_KEYS = (
    "backend",
    "model",
    "variant",
    "batch_size",
    "median_ms",
    "min_ms",
    "max_ms",
    "samples_per_s",
    "gflops",
    "floor_ms",
    "ratio_to_floor",
    "ratio_to_torch",
    "ratio_to_plain",
)


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
        r.compile()
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
    """The library whose GEMMs are a row's floor: the peers compiled from PyTorch or JAX use their
    library's matrix products (torch's for torch.compile, NumPy's BLAS call for JAX, which has no
    out= to time into), tinygan's backends their own."""
    return {"cupy-graph": "cupy", "torch-compile": "torch-cpu", "jax-cpu": "numpy"}.get(backend, backend)


PLAIN = "plain"  # the preset's own step, against which --variant rows are compared


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``"loss=wgan-gp,n_critic=5"`` → (that text, ``{"loss": "wgan-gp", "n_critic": 5}``); values read as JSON."""
    overrides = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        if not sep or key not in GANConfig.__dataclass_fields__:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE[,KEY=VALUE...] with GANConfig fields, got {text!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    if not overrides:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE[,KEY=VALUE...], got {text!r}")
    return text, overrides


def _empty_row(backend: str, model: str, batch: int, variant: str) -> dict[str, Any]:
    row = {k: None for k in ROW_KEYS}
    return row | {"backend": backend, "model": model, "variant": variant, "batch_size": batch, "status": "ok",
                  "note": ""}


def _runners(
    backends: list[str], model: str, batch: int, variants: dict[str, dict]
) -> tuple[dict[tuple, dict], dict[tuple, Runner], dict[tuple, GAN]]:
    """Rows, runners and GANs keyed by (backend, variant); PyTorch runs the plain step only."""
    rows: dict[tuple, dict[str, Any]] = {}
    runners: dict[tuple, Runner] = {}
    gans: dict[tuple, GAN] = {}
    for b in backends:
        for label, overrides in variants.items():
            if label != PLAIN and b in PEERS:
                continue
            key = (b, label)
            rows[key] = _empty_row(b, model, batch, label)
            name = b if label == PLAIN else f"{b} [{label}]"
            try:
                if b.startswith("torch"):
                    runners[key] = make_torch_runner(b, model, batch)
                elif b == "jax-cpu":
                    runners[key] = make_jax_runner(b, model, batch)
                else:
                    runners[key], gans[key] = make_tinygan_runner(b, model, batch, overrides, name)
            except Unavailable as e:
                reason = str(e)
                rows[key]["status"] = "not implemented" if reason.startswith("not implemented") else "unavailable"
                rows[key]["note"] = reason
    return rows, runners, gans


def _fill(row: dict, s: dict, f: dict, gemms: list[Gemm], batch: int, foreign: float | None) -> None:
    flops = sum(g.flops for g in gemms)
    row.update(s)
    row["samples_per_s"] = batch / (s["median_ms"] / 1e3)
    row["gflops"] = flops / (s["median_ms"] / 1e3) / 1e9
    row["floor_ms"] = f["median_ms"]
    row["floor_min_ms"], row["floor_max_ms"] = f["min_ms"], f["max_ms"]
    row["floor_gflops"] = flops / (f["median_ms"] / 1e3) / 1e9
    row["ratio_to_floor"] = s["median_ms"] / f["median_ms"]
    row["flops"] = flops
    row["n_gemms"] = len(gemms)
    row["foreign_cpu_load"] = foreign
    if foreign is not None and foreign > 0.1:
        row["note"] = f"busy machine: other processes used {foreign:.0%} of the CPUs"


def bench_batch(
    backends: list[str],
    model: str,
    batch: int,
    steps: int,
    warmup: int,
    max_seconds: float | None = None,
    log: Callable[[str], None] = lambda s: None,
    pause: float = 0.05,
    variants: dict[str, dict] | None = None,
) -> list[dict]:
    """Rows (one per backend, and per variant of each tinygan backend) for one batch size."""
    variants = {PLAIN: {}, **(variants or {})}
    rows, runners, gans = _runners(backends, model, batch, variants)
    # The floor counts tinygan's GEMMs, whichever backend runs; any GAN of a variant defines them.
    gemms = {}
    for label, overrides in variants.items():
        reference = next((g for (_, v), g in gans.items() if v == label), None)
        reference = reference or build_model(model, "numpy", batch, overrides)
        gemms[label] = model_gemms(reference, batch)
    floors: dict[tuple, Runner] = {}
    for b, label in runners:
        key = (_floor_lib(b), label)
        if key not in floors:
            floors[key] = make_floor_runner(key[0], gemms[label])
    log(f"batch {batch}: timing {', '.join(r.name for r in runners.values()) or 'nothing'} and {len(floors)} floors")
    before = _cpu_snapshot()
    measure([*runners.values(), *floors.values()], steps, warmup, max_seconds, pause=pause)
    foreign = _foreign_load(before, _cpu_snapshot())
    for (b, label), r in runners.items():
        floor = summarize(floors[_floor_lib(b), label].samples)
        _fill(rows[b, label], summarize(r.samples), floor, gemms[label], batch, foreign)
        rows[b, label]["compile_s"] = r.compile_s
    _note_unrecorded(rows, gans)
    for (b, label), row in rows.items():
        if row["status"] != "ok":
            continue
        peer = (TORCH_OF_DEVICE[DEVICE_OF[b]], PLAIN)
        if label == PLAIN and peer in runners:
            row["ratio_to_torch"] = row["median_ms"] / rows[peer]["median_ms"]
        if (b, PLAIN) in runners:
            row["ratio_to_plain"] = row["median_ms"] / rows[b, PLAIN]["median_ms"]
    return list(rows.values())


def _note_unrecorded(rows: dict[tuple, dict], gans: dict[tuple, GAN]) -> None:
    """A step that could not be recorded as a CUDA graph ran eagerly: say so in its row."""
    for key, gan in gans.items():
        failed = [r.failed for r in gan.__dict__.get("_recordings", {}).values() if r.failed]
        if failed:
            rows[key]["note"] = f"not recorded, ran eagerly: {failed[0]}"


# ============================================================================ machine description


def machine_info(backends: list[str] | None = None) -> dict[str, Any]:
    """CPU, cores, BLAS (via threadpoolctl when present), GPU and library versions."""
    import tinygan

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cores": cores(),
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


def _note(row: dict[str, Any]) -> str:
    compiled = row.get("compile_s")
    parts = [f"compiled in {compiled:.1f} s (not timed)"] if compiled is not None else []
    return "; ".join([*parts, row["note"]] if row["note"] else parts)


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
        "| backend | model | variant | batch | median ms | min–max ms | IQR ms | samples/s | GFLOP/s | floor ms "
        "| ×floor | ×torch | ×plain | note |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["rows"]:
        if r["status"] != "ok":
            note = r["note"].split(" -- ")[-1]  # the cause, without the install hint (kept in the JSON)
            lines.append(
                f"| {r['backend']} | {r['model']} | {r['variant']} | {r['batch_size']} | {r['status']} "
                f"|  |  |  |  |  |  |  |  | {note} |"
            )
            continue
        lines.append(
            f"| {r['backend']} | {r['model']} | {r['variant']} | {r['batch_size']} | {_fmt(r['median_ms'])} "
            f"| {_fmt(r['min_ms'])}–{_fmt(r['max_ms'])} | {_fmt(r['p25_ms'])}–{_fmt(r['p75_ms'])} "
            f"| {_fmt(r['samples_per_s'], 0)} | {_fmt(r['gflops'], 1)} | {_fmt(r['floor_ms'])} "
            f"| {_fmt(r['ratio_to_floor'])} | {_fmt(r['ratio_to_torch'])} | {_fmt(r['ratio_to_plain'])} | {_note(r)} |"
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
    variants: dict[str, dict] | None = None,
) -> dict:
    """The whole benchmark: ``{"machine": {...}, "rows": [...]}`` (see the module docstring).

    ``variants`` maps a label to ``GANConfig`` overrides timed beside the preset's own step.
    """
    unknown = [b for b in backends if b not in ALL_BACKENDS]
    if unknown:
        raise ValueError(f"unknown backend(s) {', '.join(unknown)}: expected some of {', '.join(ALL_BACKENDS)}")
    machine = machine_info(backends)
    rows: list[dict] = []
    wall = time.perf_counter()
    for batch in batch_sizes:
        rows.extend(bench_batch(backends, model, batch, steps, warmup, max_seconds, log, pause, variants))
    machine["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    machine["bench_seconds"] = time.perf_counter() - wall
    machine["settings"] = {
        "steps": steps,
        "warmup": warmup,
        "max_seconds": max_seconds,
        "dtype": "float32",
        "data_shape": list(DATA_SHAPE),
        "threads": threads(),
        "variants": variants or {},
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
    p.add_argument("--model", default="default",
                   choices=["default", "reference", "article", "dcgan", "dcgan-compact", "vae", "vae-conv"])
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
    p.add_argument(
        "--variant",
        type=parse_variant,
        action="append",
        default=[],
        metavar="KEY=VALUE[,KEY=VALUE...]",
        help="also time the step with these GANConfig settings over the preset, e.g. loss=wgan-gp,n_critic=5 "
        "(repeat for more; rows report the ratio to the plain step)",
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
        variants=dict(args.variant),
    )
    print(markdown_table(result))
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
