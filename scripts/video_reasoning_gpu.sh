#!/usr/bin/env bash
# Issue 5's slot-encoder runs on one GPU:
#   bash scripts/video_reasoning_gpu.sh RUNS_DIR OUT_DIR
# 1. CLEVRER-lite is generated once (a one-step run), before runs share it.
# 2. ViMON, AttnViMON and SFA encoders train side by side for equal time (steps from the
#    float32 step times of benchmarks/object_centric.py); their run folders (weights,
#    metrics, figures) are packed into OUT_DIR at once, so that Aloe can be trained on
#    their slots elsewhere.
# 3. SFA + Aloe end to end against Aloe on the frozen SFA slots, same seed and steps.
# ENCODER_STEPS ("vimon:350 attn-vimon:735 sfa:1250"), DEADLINE (seconds, for the encoders),
# QA_STEPS (800), QA_LIMIT (seconds).
set -uo pipefail
runs=${1:?usage: bash scripts/video_reasoning_gpu.sh RUNS_DIR OUT_DIR}
out=${2:?usage: bash scripts/video_reasoning_gpu.sh RUNS_DIR OUT_DIR}
py=${PYTHON:-python3}
quiet=(--trainer.progress_bar false)
mkdir -p "$runs" "$out"
"$py" -m attnlab run sfa-clevrer_lite --run-dir "$runs/prep" "${quiet[@]}" --trainer.max_steps 1 \
  --trainer.val_every 1 >"$runs/prep.log" 2>&1 || { tail -5 "$runs/prep.log"; exit 1; }
jobs=()
for job in ${ENCODER_STEPS:-vimon:350 attn-vimon:735 sfa:1250}; do
  jobs+=("${job%%:*}-clevrer_lite:${job##*:}")
done
# A data worker per run: with the data in the main process (session 6), three runs side
# by side kept the GPU busy for only 40% of the time (their steps' solo times over the wall).
SEEDS=0 EXTRA="--data.num_workers 1" bash "$(dirname "$0")/equal_time.sh" "$runs/enc" "${jobs[@]}"
cat "$runs/enc/times.txt"
for dir in "$runs"/enc/*-seed0; do
  tar czf "$out/$(basename "$dir").tgz" --exclude=checkpoints -C "$runs/enc" "$(basename "$dir")"
done
sfa=$runs/enc/sfa-clevrer_lite-seed0
steps=${QA_STEPS:-800}
mkdir -p "$runs/qa"
qa=("${quiet[@]}" --seed 0 --trainer.max_steps "$steps" --trainer.val_every "$steps" --trainer.checkpoint_every "$steps")
timeout "${QA_LIMIT:-100000}" "$py" -m attnlab run aloe-sfa-clevrer_lite --run-dir "$runs/qa/frozen" "${qa[@]}" \
  --data.encoder "$sfa" >"$runs/qa/frozen.log" 2>&1 &
timeout "${QA_LIMIT:-100000}" "$py" -m attnlab run aloe-sfa-clevrer_lite --run-dir "$runs/qa/e2e" "${qa[@]}" \
  --model.name aloe-slots --model.encoder "$sfa" --data.encoder frames >"$runs/qa/e2e.log" 2>&1
wait
tail -n 3 "$runs"/qa/*.log
tar czf "$out/qa.tgz" --exclude=checkpoints --exclude='*.safetensors' -C "$runs" qa
