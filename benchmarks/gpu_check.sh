#!/usr/bin/env bash
# GPU check for a fresh CUDA machine that already has CuPy and PyTorch installed: no network is
# needed, nothing is downloaded; tinygan runs from this checkout via PYTHONPATH.
#
#   benchmarks/gpu_check.sh [OUTDIR]        (default: gpu_results/)
#
# In this order, so that the most useful results exist even if a later part runs out of time:
# 1. the CUDA-graph tests (tests/backend/test_cuda.py, tests/backend/test_recorded_step.py) and every engine test on
#    the cupy and cupy-graph backends (layers, losses, objectives, penalties, spectral norm, the VAE's
#    math, the fused kernels through them);
# 2. bench_step.py: numpy, cupy, cupy-graph and torch-cuda at batch 64 ... 16384, default model;
# 3. the rest of the test suite with TINYGAN_BACKEND=cupy;
# 4. bench_memory.py on cupy and cupy-graph (GPU memory-pool peak), and the plot.
# Everything lands in OUTDIR: gpu_check.log (all output), pytest-gpu.log, pytest-all.log,
# bench_step.json, bench_step.md (the table), bench_step.png, bench_memory_*.md/.json, summary.txt.
# It is sized to finish within 8 minutes on one H200 (each part has its own time limit).
#
# Tunables (environment): GPU_TEST_TIMEOUT (s, default 150), BENCH_TIMEOUT (s, default 170),
# SUITE_TIMEOUT (s, default 120), BENCH_STEPS (default 30), BENCH_MAX_SECONDS (per batch size,
# default 12), BENCH_BATCH_SIZES (default 64,256,1024,4096,16384), PYTEST_WORKERS (default 4, used
# when pytest-xdist is installed), PYTHON (default python3).
# Exit status: 0 when every test passed and the benchmark ran; 1 otherwise (summary.txt says which).

set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-gpu_results}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
LOG="$OUT/gpu_check.log"
: > "$LOG"
exec > >(tee -a "$LOG") 2>&1

export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1  # never reach for the network
PY="${PYTHON:-python3}"
START=$(date +%s)
elapsed() { echo "$(( $(date +%s) - START )) s"; }

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
XDIST=()
if "$PY" -c "import xdist" 2>/dev/null; then XDIST=(-n "${PYTEST_WORKERS:-4}"); fi

echo
echo "== 1. CUDA-graph tests and engine tests on cupy / cupy-graph ($(elapsed))"
(cd "$ROOT" && TINYGAN_BACKEND=cupy timeout "${GPU_TEST_TIMEOUT:-150}" "$PY" -m pytest -q -p no:cacheprovider \
    "${XDIST[@]}" tests -k "cupy or cuda or recorded") \
    > "$OUT/pytest-gpu.log" 2>&1
GPU_TEST_RC=$?
tail -n 25 "$OUT/pytest-gpu.log"
echo "GPU tests exit code: $GPU_TEST_RC"

echo
echo "== 2. bench_step.py, default model ($(elapsed))"
timeout "${BENCH_TIMEOUT:-170}" "$PY" "$ROOT/benchmarks/bench_step.py" \
    --backends numpy,cupy,cupy-graph,torch-cuda \
    --batch-sizes "${BENCH_BATCH_SIZES:-64,256,1024,4096,16384}" \
    --model default --steps "${BENCH_STEPS:-30}" --warmup 5 --max-seconds "${BENCH_MAX_SECONDS:-12}" \
    --json "$OUT/bench_step.json" > "$OUT/bench_step.md"
BENCH_RC=$?
cat "$OUT/bench_step.md"
echo "bench_step exit code: $BENCH_RC"

echo
echo "== 3. the rest of the suite with TINYGAN_BACKEND=cupy ($(elapsed))"
(cd "$ROOT" && TINYGAN_BACKEND=cupy timeout "${SUITE_TIMEOUT:-120}" "$PY" -m pytest -q -p no:cacheprovider \
    "${XDIST[@]}" tests -k "not (cupy or cuda or recorded or compiled_peers)") > "$OUT/pytest-all.log" 2>&1
SUITE_RC=$?
tail -n 15 "$OUT/pytest-all.log"
echo "suite exit code: $SUITE_RC"

echo
echo "== 4. GPU memory and the plot ($(elapsed))"
for b in cupy cupy-graph; do
    timeout 60 "$PY" "$ROOT/benchmarks/bench_memory.py" --backend "$b" --steps 200 \
        --json "$OUT/bench_memory_$b.json" > "$OUT/bench_memory_$b.md" 2>&1 || echo "bench_memory ($b) failed"
    cat "$OUT/bench_memory_$b.md"
done
if [ -s "$OUT/bench_step.json" ]; then
    timeout 60 "$PY" "$ROOT/benchmarks/plot_bench.py" "$OUT/bench_step.json" -o "$OUT/bench_step.png" \
        || echo "plot skipped"
fi

{
    echo "GPU tests (test_cuda, test_recorded_step, engine on cupy/cupy-graph): exit $GPU_TEST_RC"
    echo "bench_step: exit $BENCH_RC"
    echo "rest of the suite (TINYGAN_BACKEND=cupy): exit $SUITE_RC"
    echo "total time: $(elapsed)"
} | tee "$OUT/summary.txt"
[ "$GPU_TEST_RC" -eq 0 ] && [ "$BENCH_RC" -eq 0 ] && [ "$SUITE_RC" -eq 0 ]
