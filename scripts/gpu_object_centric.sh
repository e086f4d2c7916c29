#!/usr/bin/env bash
# Issue 16's GPU study in one device call of at most 10 minutes (device `run`; $OUT comes back):
#   bash scripts/gpu_object_centric.sh [OUT_DIR]
# ViMON, AttnViMON and SFA at the seed's configuration (vimon-vmds, attn-vimon-vmds, sfa-vmds:
# 8 slots, 10 frames, 64x64, batch 16), every model and seed side by side on the one GPU, each
# for the same GPU time: steps = BUDGET / the model's H200 step time alone (docs/object_centric.md,
# "On a GPU"), each in its faster precision (ViMON float32: bf16 slows its launch-bound loop;
# AttnViMON and SFA bf16). Then each run's test (FG-ARI, MOT, reconstruction), its report
# and pictures, and one table of rows, all copied to OUT_DIR without checkpoints.
# SEEDS ("0 1 2"), BUDGET (solo-GPU seconds per run, 45), DEADLINE (seconds for all training, 420).
set -uo pipefail
out=${1:-${OUT:-/tmp/gpu_object_centric}}
py=${PYTHON:-python3}
here=$(dirname "$0")
runs=$(mktemp -d)
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"
budget=${BUDGET:-45}
steps() { "$py" -c "print(max(1, round($budget / $1)))"; }  # solo step seconds -> steps
seeds=${SEEDS:-0 1 2}
common="--trainer.accelerator gpu --data.num_workers 1 --data.test_size 256"
export SEEDS=$seeds DEADLINE=${DEADLINE:-420} PYTHON=$py
EXTRA="$common" bash "$here/equal_time.sh" "$runs/fp32" "vimon-vmds:$(steps 0.2297)" &
EXTRA="$common --trainer.precision bf16-mixed" \
  bash "$here/equal_time.sh" "$runs/bf16" "attn-vimon-vmds:$(steps 0.0782)" "sfa-vmds:$(steps 0.0352)" &
wait
cat "$runs"/*/times.txt | tee "$out/times.txt"
for dir in "$runs"/*/*-seed*/; do
  cp -r "$dir" "$out/" && rm -rf "$out/$(basename "$dir")/checkpoints"
done
# shellcheck disable=SC2086  # seeds is a list
"$py" "$here/vmds_references.py" --test-size 256 --seeds $seeds | tee "$out/floor.txt"
"$py" "$here/object_centric_rows.py" "$out" | tee "$out/rows.md"
