#!/usr/bin/env bash
# Issue 21's GPU side in one call of at most 10 minutes (device `run`, $OUT comes back):
#   bash scripts/gpu_rl_navigation.sh [OUT_DIR]
# The four navigation recipes (aqt-nav, cnn_dqn-nav, aqt_sketch-nav, cnn_sketch-nav) for SEEDS
# (default 0 1 2) and aqt-breakout for seed 0, all side by side (the simulator and ALE on the CPU
# cores, the networks on the one GPU), NAV_STEPS environment steps each (default 100,000 = 10% of
# the thesis's 1e6; the CPU recipes run 12,000 and 30,000) and ATARI_STEPS agent steps for Breakout
# (default 60,000), each cut after LIMIT seconds (default 480: a cut run has its checkpoints, no
# test; `attnlab resume` continues it). Then the tables (scripts/rl_rows.py) and the curves
# (scripts/rl_curves.py) into OUT_DIR.
# Not yet run: no device has been lent to issue 21.
set -uo pipefail
out=${1:-${OUT:-/tmp/gpu_rl_navigation}}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
gpu=(--trainer.accelerator gpu --trainer.progress_bar false)
steps=${NAV_STEPS:-100000}
for seed in ${SEEDS:-0 1 2}; do
  for recipe in aqt-nav cnn_dqn-nav aqt_sketch-nav cnn_sketch-nav; do
    timeout "${LIMIT:-480}" "$py" -m attnlab run "$recipe" --seed "$seed" "${gpu[@]}" \
      --trainer.max_steps "$steps" --trainer.val_every $((steps / 4)) --trainer.checkpoint_every $((steps / 4)) \
      --dqn.buffer_size 100000 --run-dir "$out/$recipe-s$seed" > "$out/$recipe-s$seed.log" 2>&1 &
  done
done
atari=${ATARI_STEPS:-60000}
timeout "${LIMIT:-480}" "$py" -m attnlab run aqt-breakout "${gpu[@]}" --trainer.max_steps "$atari" \
  --trainer.val_every $((atari / 4)) --trainer.checkpoint_every $((atari / 2)) \
  --run-dir "$out/aqt-breakout-s0" > "$out/aqt-breakout-s0.log" 2>&1 &
wait
for log in "$out"/*.log; do echo "== $log"; tail -n 2 "$log"; done
"$py" scripts/rl_rows.py --runs "aqt-nav=$out/aqt-nav-s*" --runs "cnn_dqn-nav=$out/cnn_dqn-nav-s*" \
  --metrics test/success_rate test/collisions test/return --floor test/random_policy_ | tee "$out/nav_table.md"
"$py" scripts/rl_rows.py --runs "aqt_sketch-nav=$out/aqt_sketch-nav-s*" --runs "cnn_sketch-nav=$out/cnn_sketch-nav-s*" \
  --metrics test/ade test/fde test/return --floor test/random_policy_ | tee "$out/sketch_table.md"
"$py" scripts/rl_rows.py --runs "aqt-breakout=$out/aqt-breakout-s*" --metrics test/return \
  --floor test/random_policy_ | tee "$out/breakout_table.md"
"$py" scripts/rl_curves.py "$out/curves_nav.png" --runs "aqt-nav=$out/aqt-nav-s*" --runs "cnn_dqn-nav=$out/cnn_dqn-nav-s*"
"$py" scripts/rl_curves.py "$out/curves_sketch.png" --runs "aqt_sketch-nav=$out/aqt_sketch-nav-s*" \
  --runs "cnn_sketch-nav=$out/cnn_sketch-nav-s*"
