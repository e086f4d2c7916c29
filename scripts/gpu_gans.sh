#!/usr/bin/env bash
# Issue 24's GPU side in one call of at most 10 minutes (device `run`, $OUT comes back):
#   bash scripts/gpu_gans.sh [OUT_DIR]
# 0. The 64x64 domain classifier (cached in OUT_DIR/_cache), by a 1-step DCGAN run.
# 1. The thesis's size: 64x64, widths 64, batch 256: DCGAN, DCGAN + SN, MAD-GAN (k = 3) and the KTG
#    recipe graph side by side on the one GPU, STEPS steps each (default 3,000 = 13 epochs), each cut
#    after LIMIT seconds (default 240); test IS-like / FID-like from metrics.json.
# 2. A longer gate search at 32x32 (TRIALS trials of TRIAL_STEPS steps, defaults 200 and 1,000), cut
#    after SEARCH_LIMIT seconds (default 200): a cut search continues when started again.
# DATA: the Fashion-MNIST folder (default /usr/share/datasets/fashion-mnist, Debian's package).
# Not yet run: no device has been lent to issue 24.
set -uo pipefail
out=${1:-${OUT:-/tmp/gpu_gans}}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
gpu=(--trainer.accelerator gpu --trainer.progress_bar false --task.classifier_cache "$out/_cache"
     --data.root "${DATA:-/usr/share/datasets/fashion-mnist}")
big=(--model.g_width 64 --model.d_width 64 --data.batch_size 256)
echo "== 64x64 classifier"
timeout 150 "$py" -m attnlab run dcgan-fmnist --model.name dcgan-64 "${gpu[@]}" --trainer.max_steps 1 \
  --run-dir "$out/classifier64" > "$out/classifier64.log" 2>&1
echo "rc=$?"
declare -A rows=([dcgan]="dcgan-fmnist --model.name dcgan-64" [dcgan_sn]="dcgan-fmnist --model.name dcgan-sn-64"
                 [madgan]="madgan-fmnist --model.name madgan-k3-64" [ktg]="ktg_gan-fmnist --model.name ktg-gan-k3-64")
for name in "${!rows[@]}"; do
  # shellcheck disable=SC2086  # the row's words are a recipe and its overrides
  timeout "${LIMIT:-240}" "$py" -m attnlab run ${rows[$name]} "${gpu[@]}" "${big[@]}" \
    --trainer.max_steps "${STEPS:-3000}" --trainer.val_every 1000 --trainer.checkpoint_every 1000 \
    --run-dir "$out/64-$name" > "$out/64-$name.log" 2>&1 &
done
wait
for name in "${!rows[@]}"; do
  echo "== 64-$name"; tail -n 2 "$out/64-$name.log"
done
echo "== search"
timeout "${SEARCH_LIMIT:-200}" "$py" -m attnlab search ktg_gan-fmnist --trials "${TRIALS:-200}" \
  --trial-steps "${TRIAL_STEPS:-1000}" --folder "$out/search" --trainer.accelerator gpu \
  --task.classifier_cache "$out/_cache" --data.root "${DATA:-/usr/share/datasets/fashion-mnist}" \
  --trainer.val_every 500 > "$out/search.log" 2>&1
echo "rc=$? (124: cut by SEARCH_LIMIT; start again to continue)"
tail -n 3 "$out/search.log"
