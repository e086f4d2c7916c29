#!/usr/bin/env bash
# docs/segment.md's exact-box table over seeds (issue 19): for each seed, the small SAM trained on
# exact boxes, then its decoder tuning, its token-and-decoder tuning and its learned-embedding-and-
# decoder tuning on the thesis's jitter schedule (about 20 minutes a seed on one thread). Usage: bash scripts/sam_exact_seeds.sh OUT_DIR SEED...
# then python scripts/sam_exact_table.py OUT_DIR.
set -euo pipefail
out=${1:?usage: scripts/sam_exact_seeds.sh OUT_DIR SEED...}
shift
export OMP_NUM_THREADS=1
mkdir -p "$out"
run() {  # name recipe args...
  local name=$1; shift
  [ -f "$out/$name/model.safetensors" ] && return 0  # finished already
  attnlab run "$@" --run-dir "$out/$name" > "$out/$name.log" 2>&1
}
for s in "$@"; do
  run "exact-s$s" sam-cells --seed "$s" --task.train_jitter '[[0.0, 1.0]]'
  run "exact-dt-s$s" sam_decoder_tuning-cells --seed "$s" --model.base.init_from "$out/exact-s$s"
  run "exact-pt-s$s" sam_prompt_tuning-cells --seed "$s" --model.base.init_from "$out/exact-s$s"
  run "exact-le-s$s" sam_decoder_tuning-cells --seed "$s" --model.base.init_from "$out/exact-s$s" \
    --model.train_learned_embedding true
done
