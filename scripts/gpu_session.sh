#!/usr/bin/env bash
# Everything a lent GPU has to measure for the open issues, in one device call of at most 10 minutes:
#   bash scripts/gpu_session.sh [OUT_DIR]
# The device returns at most 8 files, so all results are packed into OUT_DIR/results.tgz
# (the log is OUT_DIR/log.txt). Issue 17: scripts/gpu_vjepa.sh; issue 18: the two-teacher
# distillation step; issue 19: SAM's ViT-B encoder at 1024 x 1024 in bf16, fused vs eager;
# issue 24: the grouped k-generator GAN step.
# Wheels in .whl/ (jsonargparse and its signatures extra, absent from the device's image) are
# installed first when present; DATA (the Fashion-MNIST folder) is passed to gpu_vjepa.sh.
set -uo pipefail
out=${1:-${OUT:-/tmp/gpu_session}}
py=${PYTHON:-python3}
res=$(mktemp -d)
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
if compgen -G ".whl/*.whl" >/dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
bench() {  # bench LIMIT_SECONDS SCRIPT ARGS...: one benchmark, its JSON into the results
  local limit=$1 start=$SECONDS
  shift
  echo "== $* (limit ${limit}s)"
  timeout "$limit" "$py" "$@"
  echo "== rc=$? after $((SECONDS - start)) s"
}
pack() {  # the archive so far (a later step cut short by the call's limit loses only itself)
  tar czf "$out/results.tgz" --exclude='*.ckpt' --exclude='*.safetensors' --exclude=tb -C "$res" .
}
timeout 420 bash scripts/gpu_vjepa.sh "$res/vjepa"  # first: the issue whose target needs the GPU
pack
bench 45 benchmarks/distill.py --device cuda --batch 512 --out "$res/distill_b512.json"
bench 70 -m benchmarks.sam --part b --preset vit-b --device cuda --dtype bf16 --batch 4 \
  --out "$res/sam_vitb_bf16.json"
bench 45 benchmarks/gans.py --device cuda --width 64 --size 64 --batch 256 --out "$res/gans_64.json"
pack  # each returned file is at most 16 MiB: no checkpoints, weights or event files
ls -la "$out"
