#!/usr/bin/env bash
# GPU check for a fresh CUDA machine that already has CuPy and PyTorch installed (no network
# needed, nothing is downloaded or pip-installed; tinygan runs from this checkout via PYTHONPATH).
#
#   benchmarks/gpu_check.sh [OUTDIR]        (default: gpu_results/)
#
# 1. the test suite with TINYGAN_BACKEND=cupy (the cupy-parametrised tests run on the GPU);
# 2. bench_step.py: numpy, cupy, cupy-graph and torch-cuda at batch 64 … 16384, default model;
# 3. bench_memory.py on the cupy backend (GPU memory-pool peak) and the plot, when possible.
# Everything lands in OUTDIR: gpu_check.log (all output), pytest.log, bench_step.json,
# bench_step.md (the table), bench_step.png, bench_memory_cupy.md/.json, summary.txt.
#
# Tunables (environment): PYTEST_TIMEOUT (s, default 420), BENCH_TIMEOUT (s, default 900),
# BENCH_STEPS (default 30), BENCH_MAX_SECONDS (per batch size, default 25),
# BENCH_BATCH_SIZES (default 64,256,1024,4096,16384), PYTEST_ARGS (extra pytest arguments),
# PYTEST_PATHS (default tests).
# Exit status: 0 when the tests passed and the benchmark ran; 1 otherwise (the log says which).

set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-gpu_results}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
LOG="$OUT/gpu_check.log"
: > "$LOG"
exec > >(tee -a "$LOG") 2>&1

export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1  # never reach for the network
PY="${PYTHON:-python}"

echo "== gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) in $ROOT -> $OUT"
(cd "$ROOT" && git rev-parse HEAD 2>/dev/null && git status --short 2>/dev/null | head -20) || true
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null || echo "nvidia-smi: not available"
"$PY" - <<'EOF' || true
import platform, numpy
print("python", platform.python_version(), "numpy", numpy.__version__)
try:
    import cupy
    print("cupy", cupy.__version__, "devices", cupy.cuda.runtime.getDeviceCount(),
          "runtime", cupy.cuda.runtime.runtimeGetVersion())
except Exception as e:
    print("cupy: NOT usable:", e)
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
except Exception as e:
    print("torch: NOT usable:", e)
EOF

echo
echo "== 1. pytest with TINYGAN_BACKEND=cupy"
(cd "$ROOT" && TINYGAN_BACKEND=cupy timeout "${PYTEST_TIMEOUT:-420}" "$PY" -m pytest -q -p no:cacheprovider \
    ${PYTEST_ARGS:-} ${PYTEST_PATHS:-tests}) > "$OUT/pytest.log" 2>&1
TEST_RC=$?
tail -n 40 "$OUT/pytest.log"
echo "pytest exit code: $TEST_RC"

echo
echo "== 2. bench_step.py (default model)"
timeout "${BENCH_TIMEOUT:-900}" "$PY" "$ROOT/benchmarks/bench_step.py" \
    --backends numpy,cupy,cupy-graph,torch-cuda \
    --batch-sizes "${BENCH_BATCH_SIZES:-64,256,1024,4096,16384}" \
    --model default --steps "${BENCH_STEPS:-30}" --warmup 5 --max-seconds "${BENCH_MAX_SECONDS:-25}" \
    --json "$OUT/bench_step.json" > "$OUT/bench_step.md"
BENCH_RC=$?
cat "$OUT/bench_step.md"
echo "bench_step exit code: $BENCH_RC"

echo
echo "== 3. extras: plot, GPU memory"
if [ -s "$OUT/bench_step.json" ]; then
    "$PY" "$ROOT/benchmarks/plot_bench.py" "$OUT/bench_step.json" -o "$OUT/bench_step.png" || echo "plot skipped"
fi
timeout 300 "$PY" "$ROOT/benchmarks/bench_memory.py" --backend cupy --steps 300 \
    --json "$OUT/bench_memory_cupy.json" > "$OUT/bench_memory_cupy.md" 2>&1 || echo "bench_memory (cupy) failed"
cat "$OUT/bench_memory_cupy.md"

{
    echo "pytest (TINYGAN_BACKEND=cupy): exit $TEST_RC"
    echo "bench_step: exit $BENCH_RC"
} | tee "$OUT/summary.txt"
[ "$TEST_RC" -eq 0 ] && [ "$BENCH_RC" -eq 0 ]
