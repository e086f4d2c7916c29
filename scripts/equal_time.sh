#!/usr/bin/env bash
# Equal-wall-clock study: every recipe trains for the steps that fill the same time budget
# (steps = budget / its measured step time, from benchmarks/object_centric.py), for each
# seed, all runs side by side; then the metrics of the finished runs are gathered.
#   bash scripts/equal_time.sh RUNS_DIR RECIPE:STEPS...
# SEEDS ("0 1 2"), DEADLINE (seconds; runs still going then are stopped and reported as
# unfinished), EXTRA (more overrides for every run). The step counts, not the wall time,
# fix what each run does, so running side by side changes the speed, not the results.
set -uo pipefail
runs=${1:?usage: bash scripts/equal_time.sh RUNS_DIR RECIPE:STEPS...}
shift
py=${PYTHON:-python3}
mkdir -p "$runs"
pids=()
for job in "$@"; do
  recipe=${job%%:*}
  steps=${job##*:}
  for seed in ${SEEDS:-0 1 2}; do
    dir=$runs/$recipe-seed$seed
    # shellcheck disable=SC2086  # EXTRA is a list of overrides
    (
      start=$SECONDS
      "$py" -m attnlab run "$recipe" --seed "$seed" --run-dir "$dir" --trainer.progress_bar false \
        --trainer.max_steps "$steps" --trainer.val_every "$steps" --trainer.checkpoint_every "$steps" \
        ${EXTRA:-} >"$dir.log" 2>&1
      rc=$?
      state=$([[ -f $dir/metrics.json ]] && echo finished || echo unfinished)
      echo "$recipe seed=$seed steps=$steps rc=$rc $state $((SECONDS - start)) s" >>"$runs/times.txt"
    ) &
    pids+=($!)
  done
done
( sleep "${DEADLINE:-100000}" && pkill -f "attnlab run" ) >/dev/null 2>&1 &
watchdog=$!
wait "${pids[@]}"
pkill -P "$watchdog" sleep  # and the watchdog with it: nothing holds the output open

"$py" - "$runs" <<'EOF'
import json, pathlib, sys
runs = pathlib.Path(sys.argv[1])
rows = {d.name: json.loads((d / "metrics.json").read_text()) for d in sorted(runs.iterdir()) if (d / "metrics.json").is_file()}
(runs / "metrics.json").write_text(json.dumps(rows, indent=2))
print(f"{len(rows)} finished runs in {runs}/metrics.json")
EOF
