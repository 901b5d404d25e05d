"""Mode collapse on 2-D mixtures: GAN against PacGAN2, beside PacGAN's published Table 1.

Trains the ``points`` preset on ``ring`` (8 Gaussians of std 0.01 on the unit circle) and ``grid``
(25 Gaussians of std 0.05 on a 5×5 lattice of spacing 2) over several seeds, without packing and
with packing 2, and prints a Markdown table of mean ± standard error of the metrics of
:func:`tinygan.evaluation.evaluate.mode_metrics` on 2,500 samples per run (modes captured, percentage of
high-quality samples, reverse KL of the high-quality samples' mode histogram against uniform),
next to the values Lin et al. (2018, Table 1) report over 10 runs.

Usage::

    python benchmarks/bench_modes.py --jobs 2        # 2 datasets × (GAN, PacGAN2) × 5 seeds, 2 processes
    python benchmarks/bench_modes.py --seeds 10 --steps 20000 --json results.json

How this differs from the published setup (PacGAN's ``synthetic_data_experiments`` code, built on
ALI's Theano/Blocks code):

* Length: they train 400 epochs of 100,000 samples at batch 100, i.e. 400,000 steps; we train
  10,000 steps on ``ring`` and 12,000 on ``grid`` (``--steps``) so that the whole benchmark fits
  in about 16 minutes on a 2-core CPU with ``--jobs 2`` -- 30 to 40 times shorter.
* Networks: their generator is 4 × 400 ReLU units with BatchNorm and no biases; their
  discriminator has 3 hidden layers of 200 *maxout* units with 5 pieces each (about 5× the
  weights of a 200-unit ReLU layer, and far more linear pieces to carve out 0.01-wide bumps),
  all weights drawn from N(0, 0.02²). Ours is the ``points`` preset of :mod:`tinygan.models.gan`:
  generator 4 × 400 ReLU *without* BatchNorm, discriminator 3 × 200 ReLU, He/Glorot
  initialisation -- chosen by measurement for the short runs (see the comment in ``_points``;
  ``--d-activation maxout`` builds their discriminator).
* Optimiser: both use Adam. They keep lr 1e-4, β₁ 0.8 for the whole run; we start at the
  preset's 2e-3 (β₁ 0.5) and decay both learning rates exponentially to ``--lr-decay`` × that
  (1e-3 ×) by the last step (the preset's ``lr_decay``). Without the decay the samples keep
  jittering around the modes and the high-quality share stays near 50%. The latent is 2-D
  standard normal in both.
* Updates: ALI's training loop takes both gradients from one forward pass and then updates both
  networks; ours updates D first and G then descends through the updated D.
* Packing: their PacGAN-m discriminator sees 100 packed inputs per batch (the generator makes
  100·m samples); ours splits one batch of ``batch_size`` samples into ``batch_size / m`` packs.
  This script keeps the paper's convention by giving PacGAN-m a batch of m × the preset's.
* Metrics: the same definitions (3σ high-quality radius; modes with at least one high-quality
  sample; reverse KL ``KL(p̂ ‖ uniform)`` with ``0 · log 0 = 0``) on 2,500 samples; the paper
  reports 10 runs per setting, we default to 5 (``--seeds``).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import write_json  # noqa: E402

from tinygan import GAN, GANConfig
from tinygan.data import load_dataset, mixture_modes  # noqa: E402
from tinygan.evaluation.metrics import mode_metrics  # noqa: E402
from tinygan.models.latents import sample_model  # noqa: E402

# PacGAN (Lin et al., NeurIPS 2018), Table 1: mean ± standard error over 10 runs per setting.
PUBLISHED = {
    ("ring", 1): {"modes": (6.3, 0.5), "hq_percent": (98.2, 0.2), "reverse_kl": (0.45, 0.09)},
    ("grid", 1): {"modes": (17.3, 0.8), "hq_percent": (94.8, 0.7), "reverse_kl": (0.70, 0.07)},
    ("ring", 2): {"modes": (7.9, 0.1), "hq_percent": (95.6, 2.0), "reverse_kl": (0.07, 0.03)},
    ("grid", 2): {"modes": (23.8, 0.7), "hq_percent": (91.3, 0.8), "reverse_kl": (0.13, 0.04)},
}
METRICS = ("modes", "hq_percent", "reverse_kl")
DEFAULT_STEPS = {"ring": 10000, "grid": 12000}
N_SAMPLES = 2500


def train_and_measure(
    dataset: str,
    pack: int,
    seed: int,
    steps: int,
    overrides: dict | None = None,
    backend: str | None = None,
) -> dict:
    """Train one ``points`` GAN on ``dataset`` with packing ``pack``; returns its mode metrics and time.

    ``overrides`` replace :class:`~tinygan.models.gan.GANConfig` fields of the preset; the batch is
    ``pack`` times the (overridden) preset batch, so D judges as many packs per step at any ``pack``.
    """
    data = load_dataset(dataset, split="train", seed=seed)
    config = GANConfig.from_preset("points", (2,), "points", **(overrides or {}))
    gan = GAN(replace(config, pack=pack, batch_size=config.batch_size * pack), backend, seed)
    tic = time.perf_counter()
    gan.fit(data.x, steps=steps, log_every=max(steps // 10, 1))
    seconds = time.perf_counter() - tic
    modes, std = mixture_modes(dataset)
    result = mode_metrics(sample_model(gan, N_SAMPLES, seed=seed), modes, std)
    return {"dataset": dataset, "pack": pack, "seed": seed, "steps": steps, "seconds": seconds, **result}


def run_all(tasks: list[tuple], jobs: int) -> Iterator[dict]:
    """``train_and_measure(*task)`` for every task, in ``jobs`` processes; yields results as they end.

    Each worker process gets one BLAS thread: on a small machine, two processes whose BLAS
    threads compete for the same cores run many times slower than one after the other. Every
    run is seeded, so the results equal those of ``jobs=1`` with one BLAS thread
    (``OPENBLAS_NUM_THREADS=1``); more threads sum in another order, which moves the last digits
    of the weights and, over thousands of steps, the samples. The seconds per run depend on ``jobs``.
    """
    if jobs == 1:
        for task in tasks:
            yield train_and_measure(*task)
        return
    limits = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in limits}
    os.environ.update(dict.fromkeys(limits, "1"))  # read by the workers' BLAS when it loads
    try:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=spawn) as pool:
            for future in as_completed([pool.submit(train_and_measure, *task) for task in tasks]):
                yield future.result()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def parse_setting(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` → ``(KEY, VALUE)``; VALUE is read as JSON (numbers, lists, true/false), else kept as text."""
    key, sep, value = text.partition("=")
    known = {f.name for f in fields(GANConfig)}
    if not sep or key not in known:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY a GANConfig field, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (sample std / √n; 0 for a single value)."""
    v = np.asarray(values, dtype=np.float64)
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
    return float(v.mean()), se


def _fmt(mean: float, se: float, digits: int) -> str:
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def summarise(runs: list[dict]) -> list[dict]:
    """One row per (dataset, pack): mean ± standard error of each metric, beside the paper's."""
    rows = []
    for dataset in dict.fromkeys(r["dataset"] for r in runs):
        for pack in dict.fromkeys(r["pack"] for r in runs if r["dataset"] == dataset):
            group = [r for r in runs if r["dataset"] == dataset and r["pack"] == pack]
            row = {
                "dataset": dataset,
                "pack": pack,
                "runs": len(group),
                "all_modes_runs": sum(r["modes"] == r["modes_total"] for r in group),
                "modes_total": group[0]["modes_total"],
                "seconds_per_run": float(np.mean([r["seconds"] for r in group])),
            }
            for m in METRICS:
                values = [r[m] for r in group if r[m] is not None]  # reverse KL is None without HQ samples
                row[m] = mean_se(values) if values else (float("nan"), 0.0)
            row["published"] = PUBLISHED.get((dataset, pack))
            rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    """The summary as a Markdown table, ours beside PacGAN's Table 1."""
    lines = [
        "| data | model | runs | modes | paper | all modes in | high-quality % | paper "
        "| reverse KL | paper | s/run |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    digits = {"modes": 1, "hq_percent": 1, "reverse_kl": 2}
    for row in rows:
        model = "GAN" if row["pack"] == 1 else f"PacGAN{row['pack']}"
        cells = [f"{row['dataset']} ({row['modes_total']})", model, str(row["runs"])]
        for i, m in enumerate(METRICS):
            cells.append(_fmt(*row[m], digits[m]))
            pub = row["published"]
            cells.append(_fmt(*pub[m], digits[m]) if pub else "–")
            if i == 0:
                cells.append(f"{row['all_modes_runs']}/{row['runs']}")
        cells.append(f"{row['seconds_per_run']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="runs per setting, seeds 0..N-1")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"training steps per run [default: {', '.join(f'{k} {v}' for k, v in DEFAULT_STEPS.items())}]",
    )
    parser.add_argument(
        "--lr-decay",
        type=float,
        default=None,
        help="learning rates decay exponentially to this fraction of their start (1 = constant) "
        "[default: the points preset's]",
    )
    parser.add_argument(
        "--set",
        type=parse_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field of the points preset, e.g. --set lr_g=1e-3 --set 'g_hidden=[128,128]'",
    )
    parser.add_argument("--datasets", default="ring,grid", help="comma-separated: ring, grid")
    parser.add_argument("--packs", default="1,2", help="comma-separated packing degrees (1 = plain GAN)")
    parser.add_argument(
        "--backend", default=None, help="numpy or cupy (default: $TINYGAN_BACKEND, else numpy)"
    )
    parser.add_argument(
        "--json", default=None, metavar="PATH", help="also write every run and the summary here"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="runs in parallel, in processes of one BLAS thread each"
    )
    args = parser.parse_args(argv)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    packs = [int(p) for p in args.packs.split(",") if p.strip()]

    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")

    overrides = dict(args.set)
    if args.lr_decay is not None:
        overrides["lr_decay"] = args.lr_decay
    try:
        config = GANConfig.from_preset("points", (2,), "points", **overrides)
    except (TypeError, ValueError) as e:
        parser.error(f"--set: {e}")
    tasks = [
        (dataset, pack, seed, args.steps or DEFAULT_STEPS.get(dataset, 10_000), overrides, args.backend)
        for dataset in datasets
        for pack in packs
        for seed in range(args.seeds)
    ]
    runs = []
    tic = time.perf_counter()
    for r in run_all(tasks, args.jobs):
        runs.append(r)
        kl = "n/a" if r["reverse_kl"] is None else f"{r['reverse_kl']:.3f}"
        print(
            f"{r['dataset']} pack={r['pack']} seed={r['seed']}: modes {r['modes']}/{r['modes_total']}, "
            f"high-quality {r['hq_percent']:.1f}%, reverse KL {kl} ({r['seconds']:.0f}s)",
            file=sys.stderr,
            flush=True,
        )
    order = {task[:3]: i for i, task in enumerate(tasks)}
    runs.sort(key=lambda r: order[(r["dataset"], r["pack"], r["seed"])])
    rows = summarise(runs)
    table = markdown_table(rows)
    lengths = ", ".join(f"{d} {args.steps or DEFAULT_STEPS.get(d, 10_000)}" for d in datasets)
    print(
        f"\n{args.seeds} seeds per setting; steps: {lengths}; lr decay to ×{config.lr_decay:g}; "
        f"{''.join(f'{k} = {v}; ' for k, v in overrides.items() if k != 'lr_decay')}"
        f"{N_SAMPLES} samples each; total {time.perf_counter() - tic:.0f}s on {platform.machine()} "
        f"({args.backend or 'default backend'}, {args.jobs} job{'s' if args.jobs > 1 else ''})\n"
    )
    print(table)
    if args.json:
        payload = {
            "steps": {d: args.steps or DEFAULT_STEPS.get(d, 10_000) for d in datasets},
            "overrides": overrides,
            "lr_decay": config.lr_decay,
            "seeds": args.seeds,
            "jobs": args.jobs,
            "n_samples": N_SAMPLES,
            "runs": runs,
            "summary": rows,
            "table": table,
        }
        write_json(args.json, payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
