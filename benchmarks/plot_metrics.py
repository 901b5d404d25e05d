"""Plot a run's metrics.jsonl: the Fréchet distance and the losses against the training step.

    python benchmarks/plot_metrics.py RUN_DIR [--out fd.png]

Needs matplotlib (``pip install 'tinygan[bench]'``). The FD points are written by
``tinygan train`` every ``--eval-every`` steps on digits, MNIST and Fashion-MNIST.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_metrics(path: Path) -> tuple[list[dict], list[dict]]:
    """The run's loss records and its FD records, in step order."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    losses = [r for r in records if "d_loss" in r]
    fds = [r for r in records if "fd" in r]
    return losses, fds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a tinygan run folder holding metrics.jsonl")
    parser.add_argument("--out", type=Path, default=None, help="PNG to write [default: RUN_DIR/metrics.png]")
    args = parser.parse_args(argv)
    losses, fds = read_metrics(args.run_dir / "metrics.jsonl")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_fd, ax_loss) = plt.subplots(1, 2, figsize=(9, 3.2), dpi=100)
    ax_fd.plot([r["step"] for r in fds], [r["fd"] for r in fds], marker="o", ms=3)
    ax_fd.set(xlabel="step", ylabel="Fréchet distance", title="FD to real test images (2,000 samples)")
    ax_fd.set_yscale("log")
    for key, label in (("d_loss", "D loss"), ("g_loss", "G loss")):
        ax_loss.plot([r["step"] for r in losses], [r[key] for r in losses], label=label)
    ax_loss.set(xlabel="step", title="losses (interval means)")
    ax_loss.legend()
    fig.tight_layout()
    out = args.out or args.run_dir / "metrics.png"
    fig.savefig(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
