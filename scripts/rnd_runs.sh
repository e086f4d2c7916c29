#!/usr/bin/env bash
# The runs of docs/rnd.md's 3-seed tables: PPO, RND and transition-RND with n = 1, 2, 4 on
# DoorKey-5x5 and on MultiRoom-N2-S4 (issue 22); then python scripts/rnd_table.py OUT_DIR.
# Usage: bash scripts/rnd_runs.sh OUT_DIR [a|b|c] (parts to run side by side on several cores;
# no argument runs all one after the other). Finished runs are skipped.
set -euo pipefail
out=${1:?usage: scripts/rnd_runs.sh OUT_DIR [a|b]}
half=${2:-abc}
export OMP_NUM_THREADS=1
run() {  # name recipe args...
  local name=$1; shift
  [ -f "$out/$name/model.safetensors" ] && return 0  # finished already
  attnlab run "$@" --run-dir "$out/$name" > "$out/$name.log" 2>&1
}
mkdir -p "$out"
room="--ppo.env MiniGrid-MultiRoom-N2-S4-v0"
if [[ $half == *a* ]]; then
  for s in 0 1 2; do
    for n in 1 2; do run "doorkey-trnd$n-s$s" trnd-minigrid --seed $s --ppo.transition_n $n; done
  done
  for s in 0 1 2; do run "multiroom-trnd4-s$s" trnd-minigrid --seed $s $room; done
fi
if [[ $half == *c* ]]; then
  for s in 0 1 2; do
    run "doorkey-ppo-s$s" ppo-minigrid --seed $s
    run "doorkey-rnd-s$s" rnd-minigrid --seed $s
    run "doorkey-trnd4-s$s" trnd-minigrid --seed $s
  done
fi
if [[ $half == *b* ]]; then
  for s in 0 1 2; do
    run "multiroom-ppo-s$s" ppo-minigrid --seed $s $room
    run "multiroom-rnd-s$s" rnd-minigrid --seed $s $room
    for n in 1 2; do run "multiroom-trnd$n-s$s" trnd-minigrid --seed $s --ppo.transition_n $n $room; done
  done
fi
