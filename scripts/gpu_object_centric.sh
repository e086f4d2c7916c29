#!/usr/bin/env bash
# Issue 16's GPU study in one device call of at most 10 minutes (device `run`; $OUT comes back):
#   bash scripts/gpu_object_centric.sh [OUT_DIR]             # STUDY=seed (default) or STUDY=small
# Every model and seed side by side on the one GPU, each for the same GPU time: steps = BUDGET /
# the model's step time alone. Then each run's test (FG-ARI, MOT, reconstruction), its report and
# pictures, the one-slot floor and one table of rows, all copied to OUT_DIR without checkpoints.
# STUDY=seed: ViMON, AttnViMON and SFA at the seed's configuration (vimon-vmds, attn-vimon-vmds,
#   sfa-vmds: 8 slots, 10 frames, 64x64, batch 16), step times from docs/object_centric.md ("On a
#   GPU"), each in its faster precision (ViMON float32: bf16 slows its launch-bound loop; AttnViMON
#   and SFA bf16).
# STUDY=small: the *-sprites_small recipes as shipped (32x32, 3 frames, 1-3 sprites, 4 slots; SFA's
#   separates the sprites on a CPU in 10 minutes), float32, their step times measured here first
#   (benchmarks.object_centric --recipes, written to OUT_DIR/step_times.json).
# SEEDS ("0 1 2"), BUDGET (solo-GPU seconds per run, 45), DEADLINE (seconds for all training, 420).
set -uo pipefail
out=${1:-${OUT:-/tmp/gpu_object_centric}}
py=${PYTHON:-python3}
here=$(dirname "$0")
runs=$(mktemp -d)
mkdir -p "$out"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"
budget=${BUDGET:-45}
steps() { "$py" -c "print(max(1, round($budget / $1)))"; }  # solo step seconds -> steps
seeds=${SEEDS:-0 1 2}
common="--trainer.accelerator gpu --data.num_workers 1 --data.test_size 256"
export SEEDS=$seeds DEADLINE=${DEADLINE:-420} PYTHON=$py
if [[ ${STUDY:-seed} == small ]]; then
  recipes=(sfa-sprites_small vimon-sprites_small attn-vimon-sprites_small monet-sprites_small)
  "$py" -m benchmarks.object_centric --device cuda --recipes "${recipes[@]}" --repeats 5 --warmup 3 \
    --out "$out/step_times.json"
  # shellcheck disable=SC2207  # recipe:steps words
  jobs=($("$py" - "$out/step_times.json" "$budget" <<'PY'
import json, sys
results, budget = json.load(open(sys.argv[1]))["results"], float(sys.argv[2])
print(" ".join(f"{r['variant']}:{max(1, round(budget / (r['median_ms'] / 1000)))}" for r in results))
PY
  ))
  EXTRA="$common" bash "$here/equal_time.sh" "$runs/fp32" "${jobs[@]}"
  floor=(--image-size 32 --num-frames 3 --max-objects 3)
else
  EXTRA="$common" bash "$here/equal_time.sh" "$runs/fp32" "vimon-vmds:$(steps 0.2297)" &
  EXTRA="$common --trainer.precision bf16-mixed" \
    bash "$here/equal_time.sh" "$runs/bf16" "attn-vimon-vmds:$(steps 0.0782)" "sfa-vmds:$(steps 0.0352)" &
  wait
  floor=()
fi
cat "$runs"/*/times.txt | tee "$out/times.txt"
for dir in "$runs"/*/*-seed*/; do
  cp -r "$dir" "$out/" && rm -rf "$out/$(basename "$dir")/checkpoints"
done
# shellcheck disable=SC2086  # seeds is a list
"$py" "$here/vmds_references.py" --test-size 256 --seeds $seeds "${floor[@]}" | tee "$out/floor.txt"
"$py" "$here/object_centric_rows.py" "$out" | tee "$out/rows.md"
