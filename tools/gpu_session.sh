#!/usr/bin/env bash
# One GPU session, prepared for a short device loan, in steps (each with a time limit; logs, JSON and
# the updated benchmarks/RESULTS.md go under $OUT, default ./gpu-out):
#   check      the compiled Triton kernel against `reference` on the benchmark shapes (bf16 included)
#   models     bench_models: whole face ViT-S/B and SwinGait-2D, the issue's targets
#   attention  bench_attention: one layer per backend
#   tests      the full CUDA test files (every test shape compiles its own kernels: slow the first time)
# Runs from a plain copy of the repository: nothing is installed, the tree is imported via PYTHONPATH.
#
#   bash tools/gpu_session.sh                          # check + models + attention (about 9 minutes)
#   STEPS="tests" bash tools/gpu_session.sh            # in a second call, if the loan allows
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
unset TRITON_INTERPRET  # compiled kernels, not the interpreter

step() {  # step NAME SECONDS CMD...: run with a time limit, keep the log, never stop the session
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s): $*"
    local start=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 40 "$OUT/$name.log"
    echo "== $name: exit $rc after $((SECONDS - start))s"
}

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python -c "import sys, torch, triton; print('python', sys.version.split()[0], 'torch', torch.__version__, 'triton', triton.__version__)"
    date -u +%Y-%m-%dT%H:%MZ
} 2>&1 | tee "$OUT/machine.txt"

STEPS=${STEPS:-check models attention}
has() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
pytest_ok() { python -c "import pytest" 2> /dev/null || { echo "== $1: pytest is not installed here"; return 1; }; }

if has check && pytest_ok check; then
    step check 150 python -m pytest -q -p no:cacheprovider tests/core/test_triton_attention.py \
        -k "model_shapes or half_precision or packed_windows or keypoint_vit or shifted_window or table_gradient_is"
fi
if has models; then
    step bench_models 270 python tools/bench_models.py --device cuda --models vit_s swingait vit_b \
        --variants kprpe:triton none kprpe:flex --repeats 10 --warmup 3 --write --json "$OUT/bench_models.json"
fi
if has attention; then
    step bench_attention 120 python tools/bench_attention.py --device cuda --backends sdpa flex triton --repeats 10 \
        --write
fi
if has tests && pytest_ok tests; then
    step tests 500 python -m pytest -q -p no:cacheprovider tests/core/test_triton_attention.py tests/core/test_attention.py
fi
cp benchmarks/RESULTS.md "$OUT/RESULTS.md"
echo "== done in ${SECONDS}s; results under $OUT"
