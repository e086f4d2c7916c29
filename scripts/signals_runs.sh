#!/usr/bin/env bash
# The neural rows of docs/signals.md: 1D-SAN and 1D-CNN, time and FFT input, seeds 0-2, on
# BasicMotions, then the table (scripts/signals_table.py). The aeon rows and the
# floor: scripts/signals_baselines.py. Usage: [SEEDS="0 1 2"] scripts/signals_runs.sh [OUT_DIR] [extra overrides...]
set -euo pipefail
out=${1:-runs/signals}
shift || true
for seed in ${SEEDS:-0 1 2}; do
  for variant in san1d-pair355 san1d-pair355-fft cnn1d cnn1d-fft; do
    recipe=${variant%%-*}-basic_motions  # san1d-... -> san1d-basic_motions, cnn1d... -> cnn1d-basic_motions
    dir="$out/$variant-s$seed"
    [ -f "$dir/metrics.json" ] && continue  # finished earlier
    rm -rf "$dir"
    "${PYTHON:-python}" -m attnlab run "$recipe" --run-dir "$dir" --seed "$seed" --model.name "$variant" \
      --trainer.progress_bar false "$@"
  done
done
"${PYTHON:-python}" scripts/signals_table.py "$out"
