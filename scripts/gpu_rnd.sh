#!/usr/bin/env bash
# Issue 22's GPU side in one call of at most 10 minutes (device `run`, $OUT comes back):
#   bash scripts/gpu_rnd.sh [OUT_DIR]
# 0. benchmarks/rl_ppo.py on Montezuma's Revenge, 32 environments, on that machine's 16 CPU cores
#    (environments: ours, gymnasium's SyncVectorEnv, ale-py's AtariVectorEnv; the loop's shares).
# 1. rnd-montezuma and trnd-montezuma side by side on the one GPU, each cut after LIMIT seconds
#    (default 240) or STEPS agent steps (default 2,000,000 = 8M frames, more than the time allows),
#    a checkpoint every CHECKPOINT steps; then the frames reached, rooms visited, episode return and
#    intrinsic reward from each run's tb/ (the published budgets are billions of frames).
# Not yet run: no device has been lent to issue 22.
set -uo pipefail
out=${1:-${OUT:-/tmp/gpu_rnd}}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
echo "== benchmark"
timeout 120 "$py" benchmarks/rl_ppo.py --env ALE/MontezumaRevenge-v5 --num-envs 32 --repeats 3 \
  --out "$out/rl_ppo_montezuma.json" > "$out/benchmark.log" 2>&1
echo "== rc=$?"
for recipe in rnd-montezuma trnd-montezuma; do  # 8 CPU threads each for the environments
  OMP_NUM_THREADS=8 timeout "${LIMIT:-240}" "$py" -m attnlab run "$recipe" --run-dir "$out/$recipe" \
    --trainer.progress_bar false --trainer.accelerator gpu --trainer.max_steps "${STEPS:-2000000}" \
    --trainer.checkpoint_every "${CHECKPOINT:-65536}" --trainer.val_every 100000000 \
    > "$out/$recipe.log" 2>&1 &
done
wait
for recipe in rnd-montezuma trnd-montezuma; do
  echo "== $recipe"
  tail -n 3 "$out/$recipe.log"
  "$py" - "$out/$recipe/tb" <<'EOF'
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

events = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
events.Reload()
for tag in ("train/rooms_visited", "train/episode_return", "train/intrinsic_reward"):
    if tag in events.Tags()["scalars"]:
        last = events.Scalars(tag)[-1]
        print(f"{tag}: {last.value:.4g} at agent step {last.step} ({4 * last.step} frames)")
EOF
done
