#!/usr/bin/env bash
# The window-length rows of docs/signals.md: 1D-SAN and 1D-CNN on ArrowHead, seeds 0-2, trained
# and tested with windows of 32, 96 and 128 steps (64, the thesis's, is the main table's runs:
# scripts/signals_runs.sh). Usage: scripts/signals_windows.sh [OUT_DIR] [MAIN_RUNS_DIR]
set -euo pipefail
out=${1:-runs/signals-windows}
main=${2:-runs/signals-arrowhead}
for seed in 0 1 2; do
  for window in 32 96 128; do
    for variant in san1d-pair355 cnn1d; do
      dir="$out/$variant-w$window-s$seed"
      [ -f "$dir/metrics.json" ] && continue  # finished earlier
      rm -rf "$dir"
      "${PYTHON:-python}" -m attnlab run "${variant%%-*}-basic_motions" --run-dir "$dir" --seed "$seed" \
        --model.name "$variant" --data.problem ArrowHead --model.in_channels 1 --model.num_classes 3 \
        --trainer.max_steps 2000 --data.window "$window" --model.window "$window" \
        --trainer.progress_bar false
    done
  done
done
"${PYTHON:-python}" scripts/signals_table.py "$out" "$main" --seeds 0 1 2
