"""One convolution layer's forward + backward, beside the GEMM floor of the same products and PyTorch eager.

For each shape and batch, three things are timed in interleaved rounds (one of each per round, so
that a busy machine slows all of them alike):

* ``tinygan``: ``forward``, ``start_gradients`` and ``backward`` (weight, bias and input gradients),
  float32 on NumPy, channels last;
* ``floor``: the three matrix products that the layer performs, of the same shapes and with the
  same transposed operands, into preallocated outputs -- what the layer cannot beat on this BLAS;
* ``torch``: ``conv2d`` / ``conv_transpose2d`` forward and autograd backward (x, weight and bias
  gradients) in PyTorch eager, float32, its default NCHW layout.

Two more rows time the layer's own memory movement alone: gathering the patches (im2col, k² slice
copies) and writing the input gradient back (col2im, k² slice-adds). ``--memory`` measures the peak
of the host allocations (tracemalloc) of one forward + backward of the 64→128 convolution at batch
1024, whose patches (205 MB whole) are gathered in chunks within :data:`tinygan.engine.layers.taps.GATHER_BYTES`.

    python benchmarks/bench_conv.py --threads 1 --rounds 15 --memory
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import tracemalloc
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tinygan.engine.layers import Conv2d, ConvTranspose2d, taps  # noqa: E402
from tinygan.engine.network import Sequential  # noqa: E402

# name: (transposed?, c_in, c_out, kernel, stride, padding, input size)
SHAPES = {
    "conv 64→128 k4 s2 p1, 14×14→7×7": (False, 64, 128, 4, 2, 1, 14),
    "transpose 128→64 k4 s2 p1, 7×7→14×14": (True, 128, 64, 4, 2, 1, 7),
    "conv 1→64 k4 s2 p1, 28×28→14×14": (False, 1, 64, 4, 2, 1, 28),
    "transpose 64→1 k4 s2 p1, 14×14→28×28": (True, 64, 1, 4, 2, 1, 14),
}


def _layer(spec: tuple) -> Any:
    transposed, c_in, c_out, k, s, p, _ = spec
    return ConvTranspose2d(c_in, c_out, k, s, p) if transposed else Conv2d(c_in, c_out, k, s, p)


def runners(spec: tuple, batch: int, torch: Any) -> dict[str, Any]:
    """Callables of one step each: the layer, its GEMM floor, its im2col and col2im alone, PyTorch's twin."""
    rng = np.random.default_rng(0)
    layer = _layer(spec)
    net = Sequential([layer], "numpy", dtype="float32")
    size = spec[6]
    x = rng.standard_normal((batch, size, size, layer.c_in), dtype=np.float32)
    y = net.forward(x)
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    net.start_gradients()
    net.backward(dy)

    def step() -> None:
        net.forward(x)
        net.start_gradients()
        net.backward(dy)

    image, grid = (y, x) if spec[0] else (x, y)
    out = {"tinygan": step, **_floor(layer, image, grid), **_moves(layer, image)}
    if torch is not None:
        out["torch"] = _torch_step(torch, spec, layer, x, dy)
    return out


def _floor(layer: Any, image: np.ndarray, grid: np.ndarray) -> dict[str, Any]:
    """The layer's three GEMMs: patches·W (M×K·K×N), patchesᵀ·rows (dW) and rows·Wᵀ (the patches' gradient)."""
    rng = np.random.default_rng(1)
    m, kk, n = grid.shape[0] * grid.shape[1] * grid.shape[2], layer.params["W"].shape[0], layer.params["W"].shape[1]
    cols = rng.standard_normal((m, kk), dtype=np.float32)
    rows = rng.standard_normal((m, n), dtype=np.float32)
    w = layer.params["W"]
    out_rows, out_w, out_cols = np.empty((m, n), np.float32), np.empty((kk, n), np.float32), np.empty_like(cols)

    def floor() -> None:
        np.matmul(cols, w, out=out_rows)
        np.matmul(cols.T, rows, out=out_w)
        np.matmul(rows, w.T, out=out_cols)

    return {"floor": floor}


def _moves(layer: Any, image: np.ndarray) -> dict[str, Any]:
    """im2col of the image side and col2im of patches of the same size, alone."""
    buf = np.empty((image.shape[0] * layer.taps.grid[0] * layer.taps.grid[1], layer.params["W"].shape[0]), np.float32)
    buf[...] = 1.0
    return {"im2col": lambda: layer.taps.gather(np, image, buf), "col2im": lambda: layer.taps.scatter(np, buf, True)}


def _torch_step(torch: Any, spec: tuple, layer: Any, x: np.ndarray, dy: np.ndarray) -> Any:
    transposed, c_in, c_out, k, s, p, _ = spec
    f = torch.nn.functional
    xt = torch.tensor(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), requires_grad=True)
    shape = (c_in, c_out, k, k) if transposed else (c_out, c_in, k, k)
    wt = torch.randn(shape, requires_grad=True)
    bt = torch.zeros(c_out, requires_grad=True)
    dyt = torch.tensor(np.ascontiguousarray(dy.transpose(0, 3, 1, 2)))
    op = (lambda: f.conv_transpose2d(xt, wt, bt, stride=s, padding=p)) if transposed else (
        lambda: f.conv2d(xt, wt, bt, stride=s, padding=p))

    def step() -> None:
        xt.grad = wt.grad = bt.grad = None
        op().backward(dyt)

    return step


def measure(fns: dict[str, Any], rounds: int, warmup: int) -> dict[str, list[float]]:
    """``rounds`` interleaved rounds, one call of each function per round, after ``warmup`` rounds."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(warmup + rounds):
        for name, fn in fns.items():
            tic = time.perf_counter()
            fn()
            if r >= warmup:
                samples[name].append(time.perf_counter() - tic)
    return samples


def rows_of(shape: str, batch: int, samples: dict[str, list[float]]) -> list[str]:
    med = {name: statistics.median(s) * 1e3 for name, s in samples.items()}
    lines = []
    for name, s in samples.items():
        ms = sorted(t * 1e3 for t in s)
        q1, q3 = ms[len(ms) // 4], ms[(3 * len(ms)) // 4]
        floor = f"{med[name] / med['floor']:.2f}" if name in ("tinygan", "torch") else ""
        vs_torch = f"{med[name] / med['torch']:.2f}" if "torch" in med and name in ("tinygan", "torch") else ""
        lines.append(f"| {shape} | {batch} | {name} | {med[name]:.2f} | {ms[0]:.2f}–{ms[-1]:.2f} | {q1:.2f}–{q3:.2f} "
                     f"| {floor} | {vs_torch} |")
    return lines


def peak_memory(batch: int = 1024) -> str:
    """Peak host allocations of one forward + backward of the 64→128 convolution, beyond its input and dy."""
    layer = Conv2d(64, 128, 4, 2, 1)
    net = Sequential([layer], "numpy", dtype="float32")
    x = np.ones((batch, 14, 14, 64), np.float32)
    dy = np.ones((batch, 7, 7, 128), np.float32)
    tracemalloc.start()
    y = net.forward(x)
    net.start_gradients()
    dx = net.backward(dy)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    buffers = sum(a.nbytes for a in layer.work.arrays.values())
    whole = batch * 49 * 16 * 64 * 4
    return (f"Peak memory, Conv2d(64, 128, 4, 2, 1) forward + backward at batch {batch}, float32 (tracemalloc): "
            f"{peak / 2**20:.1f} MiB, of which the output y {y.nbytes / 2**20:.1f} MiB and the input gradient dx "
            f"{dx.nbytes / 2**20:.1f} MiB; the layer's reused buffers hold {buffers / 2**20:.1f} MiB (patch budget "
            f"{taps.GATHER_BYTES / 2**20:.0f} MiB kept from forward to backward, a quarter of it for the input "
            f"gradient's), against {whole / 2**20:.1f} MiB for the whole batch's patches at once.")


def header(threads: int | None, torch: Any) -> str:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(f"{p['internal_api']} {p['version']} {p.get('architecture', '')} ×{p['num_threads']}"
                         for p in threadpool_info() if p.get("user_api") == "blas")
    except ImportError:
        blas = "unknown"
    peer = f"torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch is not None else "torch absent"
    return (f"CPU: {model} ({os.cpu_count()} cores visible, {threads or 'all'} used); BLAS: {blas}; "
            f"numpy {np.__version__}; {peer}; load average at the start {_load()}")


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="BLAS and PyTorch threads (default: all cores)")
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    ap.add_argument("--memory", action="store_true", help="also measure the peak memory at batch 1024")
    args = ap.parse_args(argv)
    if args.threads:
        from _runners import set_threads

        set_threads(args.threads)
    try:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    print(header(args.threads, torch), flush=True)
    print("\n| shape | batch | what | median ms | min–max ms | IQR ms | ×floor | ×torch |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for shape in args.shapes:
        for batch in args.batches:
            samples = measure(runners(SHAPES[shape], batch, torch), args.rounds, args.warmup)
            print("\n".join(rows_of(shape, batch, samples)), flush=True)
    print(f"\nLoad average at the end: {_load()}")
    if args.memory:
        print("\n" + peak_memory())


if __name__ == "__main__":
    main()
