"""Smoke test of benchmarks/bench_conv.py: it runs, and its table has a row of each kind. No timing assertions."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_conv  # noqa: E402


def test_bench_conv_rows_and_memory(capsys, monkeypatch):
    monkeypatch.setattr(bench_conv.taps, "GATHER_BYTES", 4096)
    for shape in bench_conv.SHAPES:
        fns = bench_conv.runners(bench_conv.SHAPES[shape], 2, None)
        assert set(fns) == {"tinygan", "floor", "im2col", "col2im"}
        rows = bench_conv.rows_of(shape, 2, bench_conv.measure(fns, rounds=1, warmup=0))
        assert [row.split(" | ")[2] for row in rows] == list(fns)
    assert "MiB" in bench_conv.peak_memory(batch=4)
