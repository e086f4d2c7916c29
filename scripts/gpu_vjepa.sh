#!/usr/bin/env bash
# Issue 17's GPU side in one call of at most 10 minutes (device `run`, $OUT comes back):
#   bash scripts/gpu_vjepa.sh [OUT_DIR]
# 1. benchmarks/vjepa.py at the paper's scale: ViT-L/16, 16 frames at 224, bf16 autocast + SDPA,
#    fused step only, batches 8, 16, 32 (the largest that fits is the one to report): clips/s,
#    peak memory, achieved TFLOP/s and MFU against the bf16 dense peak (989 TFLOP/s).
# 2. The same at the CPU config (vjepa-tiny-mfmnist, batch 64, fp32): fused vs eager ratio.
# 3. The recipe on the GPU in bf16 for 1500 steps (the CPU preset), probes and floor included.
# BATCHES ("8 16 32"), STEPS (1500).
set -uo pipefail
out=${1:-${OUT:-/tmp/gpu_vjepa}}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"
for b in ${BATCHES:-8 16 32}; do
  timeout 150 "$py" benchmarks/vjepa.py --device cuda --model vjepa-vitl16 --batch "$b" --dtype bf16 \
    --no-eager --repeats 5 --out "$out/vitl16_b$b.json" 2>&1 | tail -n 25 | tee "$out/vitl16_b$b.log"
done
timeout 120 "$py" benchmarks/vjepa.py --device cuda --model vjepa-tiny-mfmnist --batch 64 --dtype fp32 \
  --out "$out/tiny_b64.json" 2>&1 | tail -n 20
steps=${STEPS:-1500}
timeout 240 "$py" -m attnlab run vjepa-moving_fmnist --run-dir "$out/run" --trainer.progress_bar false \
  --trainer.accelerator gpu --trainer.precision bf16-mixed --trainer.max_steps "$steps" \
  --data.num_workers 4 >"$out/run.log" 2>&1
tail -n 3 "$out/run.log"
cp "$out/run/metrics.json" "$out/run_metrics.json" 2>/dev/null
rm -rf "$out/run/checkpoints" "$out/run/tb"
