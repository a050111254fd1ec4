#!/usr/bin/env bash
# One GPU session, prepared to fit a short device loan (about 8 minutes of work on one H100/H200):
#   1. the CUDA test paths (compiled Triton kernel in fp32/fp16/bf16, flex forward+backward),
#   2. the attention-layer table (bench_attention) and the whole-model table (bench_models),
# with every log, JSON and the updated benchmarks/RESULTS.md written under $OUT (default ./gpu-out).
# Runs from a plain copy of the repository: nothing is installed, the tree is imported via PYTHONPATH.
#
#   bash tools/gpu_session.sh            # everything
#   QUICK=1 bash tools/gpu_session.sh    # tests + the issue's whole-model targets only
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

if python -c "import pytest" 2> /dev/null; then
    step tests 120 python -m pytest -q -p no:cacheprovider tests/core/test_triton_attention.py tests/core/test_attention.py
else
    echo "== tests: pytest is not installed here; the benchmarks below still compare against reference"
fi

step bench_models 270 python tools/bench_models.py --device cuda --models vit_s swingait vit_b --variants kprpe:triton none kprpe:flex \
    --repeats 10 --warmup 3 --write --json "$OUT/bench_models.json"
if [ -z "${QUICK:-}" ]; then
    step bench_attention 150 python tools/bench_attention.py --device cuda --backends sdpa flex triton --repeats 10 --write
fi
cp benchmarks/RESULTS.md "$OUT/RESULTS.md"
echo "== done in ${SECONDS}s; results under $OUT"
