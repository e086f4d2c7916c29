#!/usr/bin/env bash
# The runs of docs/gans.md (issue 24), 3 seeds at the recipes' 2,000 steps (STEPS to change it);
# then python scripts/gans_table.py OUT_DIR.
# Usage: bash scripts/gans_runs.sh OUT_DIR [table|search|best|ema] (parts to run side by side on
# several cores; no argument runs all four one after the other). Finished runs are skipped; the
# search continues where it stopped. `best` re-trains the search's best graph (OUT_DIR/search/best.json);
# `ema` is MAD-GAN with the generators' moving average drawing the samples.
set -euo pipefail
out=${1:?usage: scripts/gans_runs.sh OUT_DIR [table|search|best|ema]}
part=${2:-table search best ema}
steps=${STEPS:-2000}
trials=${TRIALS:-40}
trial_steps=${TRIAL_STEPS:-500}
export OMP_NUM_THREADS=1
run() {  # name recipe args...
  local name=$1; shift
  [ -f "$out/$name/model.safetensors" ] && return 0  # finished already
  attnlab run "$@" --seed "$seed" --trainer.max_steps "$steps" --trainer.progress_bar false \
    --run-dir "$out/$name" > "$out/$name.log" 2>&1
}
mkdir -p "$out"
if [[ $part == *table* ]]; then
  for seed in 0 1 2; do
    run "dcgan-s$seed" dcgan-fmnist
    run "dcgan_sn-s$seed" dcgan-fmnist --model.name dcgan-sn-32
    run "madgan-s$seed" madgan-fmnist
    run "ktg_recipe-s$seed" ktg_gan-fmnist
  done
fi
if [[ $part == *search* ]]; then
  attnlab search ktg_gan-fmnist --trials "$trials" --trial-steps "$trial_steps" --folder "$out/search" \
    --trainer.val_every 250 >> "$out/search.log" 2>&1
fi
if [[ $part == *best* ]]; then
  graph=$(python -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1]))['graph']))" "$out/search/best.json")
  for seed in 0 1 2; do run "ktg_best-s$seed" ktg_gan-fmnist --task.graph "$graph"; done
fi
if [[ $part == *ema* ]]; then
  for seed in 0 1 2; do run "madgan_ema-s$seed" madgan-fmnist --model.ema true; done
fi
