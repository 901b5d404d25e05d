"""Plot bench_step.py's JSON: step time against batch size per backend, log-log.

    python benchmarks/plot_bench.py bench.json [-o bench.png]

Each backend is a line of median step times with a min–max band; each GEMM floor measured in
the run (one per array library) is a dashed line. Needs matplotlib (``pip install 'tinygan[bench]'``),
imported only when plotting.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def series(rows: list[dict[str, Any]]) -> tuple[dict[str, list[tuple]], dict[str, list[tuple]]]:
    """``{backend: [(batch, median, min, max), ...]}`` of measured rows, and the floors the same way."""
    steps: dict[str, list[tuple]] = {}
    floors: dict[str, list[tuple]] = {}
    for r in rows:
        if r.get("status", "ok") != "ok" or r.get("median_ms") is None:
            continue
        steps.setdefault(r["backend"], []).append((r["batch_size"], r["median_ms"], r["min_ms"], r["max_ms"]))
        if r.get("floor_ms") is not None:
            lib = "cupy" if r["backend"].startswith("cupy") else r["backend"]
            point = (
                r["batch_size"],
                r["floor_ms"],
                r.get("floor_min_ms", r["floor_ms"]),
                r.get("floor_max_ms", r["floor_ms"]),
            )
            if point not in floors.setdefault(lib, []):
                floors[lib].append(point)
    for d in (steps, floors):
        for k in d:
            d[k].sort()
    return steps, floors


def plot(result: dict[str, Any], out: str | Path) -> Path:
    """Write the PNG and return its path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("plotting needs matplotlib: pip install 'tinygan[bench]'") from None
    steps, floors = series(result["rows"])
    if not steps:
        raise SystemExit("no measured rows to plot")
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    colors = {}
    for i, (backend, pts) in enumerate(sorted(steps.items())):
        b, med, lo, hi = zip(*pts, strict=True)
        (line,) = ax.plot(b, med, marker="o", label=backend, color=f"C{i}")
        ax.fill_between(b, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
        colors[backend] = line.get_color()
    for lib, pts in sorted(floors.items()):
        b, med, _, _ = zip(*pts, strict=True)
        ax.plot(b, med, linestyle="--", color=colors.get(lib, "gray"), alpha=0.8, label=f"GEMM floor ({lib})")
    model = result["rows"][0].get("model", "?")
    machine = result.get("machine", {})
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("training step, ms (median; band: min–max)")
    ax.set_title(f"tinygan '{model}' step — {machine.get('gpu') or machine.get('cpu', '')}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("json", help="a file written by bench_step.py --json")
    p.add_argument("-o", "--out", help="PNG to write (default: the JSON's name with .png)")
    args = p.parse_args(argv)
    result = json.loads(Path(args.json).read_text())
    out = plot(result, args.out or Path(args.json).with_suffix(".png"))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
