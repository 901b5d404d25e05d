"""Peak memory of a real tinygan training run on a 60,000-image dataset, and of a long ``sample``.

    python benchmarks/bench_memory.py [--dataset fashion-mnist] [--model default] [--steps 300]
        [--batch-size 64] [--backend numpy|cupy|cupy-graph] [--json PATH]
        (--model default, reference, article, dcgan or dcgan-compact)
    python benchmarks/bench_memory.py --sample 1000000 [--model default] [--json PATH]

The run happens in a child process (a fresh interpreter, so nothing the parent imported counts):
it loads the training split (Fashion-MNIST from a local copy; the procedural ``digits`` set of the
same size when that is missing), builds the preset's GAN and trains it with ``GAN.fit`` for a few
hundred steps. Reported:

* host: peak resident set size (``ru_maxrss`` of the child, read by the parent with ``wait4``),
  and the child's current RSS after imports, after loading the data, after building the model
  and at every log interval of training, so growth during training shows;
* GPU (``--backend cupy`` or ``cupy-graph``): the high-water mark of CuPy's default memory pool
  (``total_bytes()``, polled at every log interval, plus ``used_bytes()``) and, for a recorded
  CUDA graph, the size of the graph's private pool; or "unavailable".

Target: under 200 MB of host memory for Fashion-MNIST-size training on NumPy.

``--sample N`` measures instead ``python -m tinygan sample -n N --out x.npy`` in a child process
(its peak RSS by ``wait4``), from a checkpoint of the preset's untrained model: the samples are
generated and written a chunk at a time, so memory stays flat however long the file (at N =
1,000,000 the file is 3.1 GB). Target: under 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
TARGET_MB = 200.0
SAMPLE_TARGET_MB = 300.0
MB = 1024 * 1024


def _rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def child(args: argparse.Namespace) -> dict[str, Any]:
    """The measured run. Returns what it saw; peak RSS is read by the parent."""
    marks: dict[str, float] = {"start": _rss_bytes() / MB}
    import numpy as np

    from tinygan import GAN
    from tinygan.backend import get_backend
    from tinygan.data import load_dataset
    from tinygan.io.errors import DataError

    backend = get_backend(args.backend)
    marks["after_imports"] = _rss_bytes() / MB
    note = ""
    try:
        ds = load_dataset(args.dataset, split="train", download=False)
    except DataError as e:
        note = f"{args.dataset} not available ({e}); used digits of the same size"
        ds = load_dataset("digits", split="train", n=60_000)
    marks["after_data"] = _rss_bytes() / MB
    gan = GAN.from_preset(args.model, ds.sample_shape, backend=backend, seed=0, batch_size=args.batch_size)
    marks["after_model"] = _rss_bytes() / MB

    pool = None
    if backend.on_gpu:
        import cupy

        pool = cupy.get_default_memory_pool()
    gpu = {"pool_total_peak_mb": 0.0, "pool_used_peak_mb": 0.0, "graph_pool_mb": 0.0}
    training_rss: list[tuple[int, float]] = []

    def on_step(progress: Any) -> None:
        if progress.record is not None:  # a log interval: the host has just synchronised anyway
            training_rss.append((progress.step, _rss_bytes() / MB))
            if pool is not None:
                gpu["pool_total_peak_mb"] = max(gpu["pool_total_peak_mb"], pool.total_bytes() / MB)
                gpu["pool_used_peak_mb"] = max(gpu["pool_used_peak_mb"], pool.used_bytes() / MB)
                graphs = gan.__dict__.get("_recordings", {}).values()  # a recorded step's private pool
                gpu["graph_pool_mb"] = sum(r.pool.total_bytes() for r in graphs if hasattr(r, "pool")) / MB

    tic = time.perf_counter()
    history = gan.fit(ds.x, steps=args.steps, batch_size=args.batch_size, log_every=args.log_every, callback=on_step)
    seconds = time.perf_counter() - tic
    return {
        "dataset": ds.name,
        "n_images": len(ds),
        "image_shape": list(ds.sample_shape),
        "dataset_mb": ds.x.nbytes / MB,
        "dataset_dtype": str(ds.x.dtype),
        "model": args.model,
        "backend": backend.name,
        "batch_size": args.batch_size,
        "steps": gan.step,
        "train_seconds": seconds,
        "params": int(gan.G.n_params + gan.D.n_params),
        "params_mb": (gan.G.params.nbytes + gan.D.params.nbytes) / MB,
        "rss_marks_mb": marks,
        "rss_during_training_mb": training_rss,
        "final_losses": {k: history[-1][k] for k in ("d_loss", "g_loss")} if history else {},
        "gpu": gpu if pool is not None else "unavailable (numpy backend)",
        "note": note,
        "numpy": np.__version__,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the child, wait for it with ``wait4`` for its resource usage, combine the results."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--dataset",
        args.dataset,
        "--model",
        args.model,
        "--steps",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
        "--backend",
        args.backend,
        "--log-every",
        str(args.log_every),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=_child_env(), text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"training child failed with exit code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports kilobytes
    result["target_mb"] = TARGET_MB
    result["meets_target"] = result["peak_rss_mb"] < TARGET_MB if result["backend"] == "numpy" else None
    return result


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(_REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_sample(args: argparse.Namespace) -> dict[str, Any]:
    """Peak RSS of ``tinygan sample -n N --out x.npy`` in a child, from the preset's untrained model."""
    import tempfile

    sys.path.insert(0, str(_REPO))
    from tinygan import GAN

    with tempfile.TemporaryDirectory(prefix="bench-sample-") as folder:
        checkpoint, out = Path(folder) / "checkpoint.npz", Path(folder) / "x.npy"
        GAN.from_preset(args.model, (28, 28), backend="numpy", seed=0).save(str(checkpoint))
        cmd = [sys.executable, "-m", "tinygan", "sample", "--checkpoint", str(checkpoint), "-n", str(args.sample),
               "--out", str(out), "--backend", "numpy"]
        tic = time.perf_counter()
        proc = subprocess.Popen(cmd, env=_child_env(), stderr=subprocess.PIPE, text=True)
        err = proc.stderr.read() if proc.stderr else ""
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - tic
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"sample failed: {err.strip()}")
        file_mb = out.stat().st_size / MB
    peak = usage.ru_maxrss / 1024  # Linux reports kilobytes
    return {
        "command": f"tinygan sample -n {args.sample} --out x.npy",
        "model": args.model,
        "n": args.sample,
        "file_mb": file_mb,
        "seconds": seconds,
        "peak_rss_mb": peak,
        "target_mb": SAMPLE_TARGET_MB,
        "meets_target": peak < SAMPLE_TARGET_MB,
    }


def sample_markdown(r: dict[str, Any]) -> str:
    verdict = "met" if r["meets_target"] else "missed"
    return (
        f"`{r['command']}` ({r['model']} model): {r['file_mb']:.0f} MB written in {r['seconds']:.1f} s; "
        f"**peak RSS {r['peak_rss_mb']:.1f} MB** (target < {r['target_mb']:.0f} MB: {verdict})"
    )


def markdown(r: dict[str, Any]) -> str:
    marks = r["rss_marks_mb"]
    during = [mb for _, mb in r["rss_during_training_mb"]]
    gpu = r["gpu"]
    verdict = {True: "met", False: "missed", None: "n/a"}[r["meets_target"]]
    gpu_s = (
        f"pool peak {gpu['pool_total_peak_mb']:.1f} MB (used peak {gpu['pool_used_peak_mb']:.1f} MB), "
        f"recorded graph's own pool {gpu.get('graph_pool_mb', 0.0):.1f} MB"
        if isinstance(gpu, dict)
        else gpu
    )
    lines = [
        f"{r['dataset']}: {r['n_images']} images {tuple(r['image_shape'])} {r['dataset_dtype']} "
        f"({r['dataset_mb']:.1f} MB); model {r['model']} ({r['params']:,} params, {r['params_mb']:.1f} MB); "
        f"backend {r['backend']}; {r['steps']} steps of batch {r['batch_size']} in {r['train_seconds']:.1f} s"
        + (f"; note: {r['note']}" if r["note"] else ""),
        "",
        "| measure | MB |",
        "|---|---:|",
        f"| RSS at start | {marks['start']:.1f} |",
        f"| RSS after imports | {marks['after_imports']:.1f} |",
        f"| RSS after loading data | {marks['after_data']:.1f} |",
        f"| RSS after building model | {marks['after_model']:.1f} |",
        f"| RSS during training (min–max over log steps) | {min(during, default=0):.1f}–{max(during, default=0):.1f} |",
        f"| **peak RSS (ru_maxrss)** | **{r['peak_rss_mb']:.1f}** |",
        f"| target | < {r['target_mb']:.0f} ({verdict}) |",
        f"| GPU memory | {gpu_s} |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--model", default="default",
                   choices=["default", "reference", "article", "dcgan", "dcgan-compact"])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--backend", default="numpy", choices=["numpy", "cupy", "cupy-graph"])
    p.add_argument("--json", help="also write the result as JSON here")
    p.add_argument("--sample", type=int, metavar="N", help="measure `tinygan sample -n N --out x.npy` instead")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    if args.sample is not None:
        result = run_sample(args)
        print(sample_markdown(result))
        if args.json:
            from _report import write_json

            write_json(args.json, result)
        return 0
    if args.backend.startswith("cupy"):
        sys.path.insert(0, str(_REPO))
        from tinygan.backend import cupy_available

        if not cupy_available():
            print("GPU memory: unavailable (CuPy or a CUDA device is missing)")
            return 0
    result = run(args)
    print(markdown(result))
    if args.json:
        from _report import write_json  # imports tinygan, which the measured children load themselves

        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
