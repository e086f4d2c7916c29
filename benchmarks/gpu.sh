#!/usr/bin/env bash
# The GPU side of the object-centric benchmarks (issue 3), in one go on a CUDA machine:
#   bash benchmarks/gpu.sh OUT_DIR
# The GPU tests first, then step times of the four models and of ViMON against the
# reference's slot loop, in float32 and in bf16 + channels-last, then torch.compile
# (time-limited: compiling the unrolled loops takes minutes). JSON results and the log go to OUT_DIR.
set -uo pipefail
out=${1:?usage: bash benchmarks/gpu.sh OUT_DIR}
mkdir -p "$out"
py=${PYTHON:-python3}
run() {  # run LIMIT_SECONDS CMD...: a step that fails or times out is logged, the rest still runs
  local limit=$1
  shift
  echo "== $* (limit ${limit}s)"
  local start=$SECONDS
  timeout "$limit" "$@"
  echo "== rc=$? after $((SECONDS - start)) s"
}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
run 240 "$py" -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py
run 200 "$py" -m benchmarks.object_centric --device cuda --repeats 10 --warmup 3 \
  --out "$out/object_centric_cuda.json"
run 200 "$py" -m benchmarks.object_centric --device cuda --repeats 10 --warmup 3 --bf16 --channels-last \
  --out "$out/object_centric_cuda_bf16.json"
run 200 "$py" -m benchmarks.vimon_loop --device cuda --repeats 10 --warmup 3 \
  --variants batched loop loop-tiled --out "$out/vimon_loop_cuda.json"
run 200 "$py" -m benchmarks.vimon_loop --device cuda --repeats 10 --warmup 3 --bf16 --channels-last \
  --variants batched loop loop-tiled --out "$out/vimon_loop_cuda_bf16.json"
run "${COMPILE_LIMIT:-150}" "$py" -m benchmarks.object_centric --device cuda --repeats 10 --warmup 3 \
  --bf16 --channels-last --compile --models vimon sfa --out "$out/object_centric_cuda_compile.json"
