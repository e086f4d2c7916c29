#!/usr/bin/env bash
# Prepare a fresh machine: a virtual environment in .venv with PyTorch and attnlab.
# PyTorch is pinned and installed first, on its own: on machines without a GPU that
# provide the local CPU wheel this takes it; an unpinned torch (or one pulled in by
# another package) would download several GB of CUDA libraries. Set PIP_INDEX_URL
# to PyTorch's CPU index on other CPU-only machines.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "attnlab needs Python >= 3.11 (found $("$PYTHON" --version))" >&2; exit 2; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==${TORCH_VERSION}"
.venv/bin/python -m pip install --quiet -e ".[dev,video,rl,signals,segment,search,points,tta]"

# Real datasets that Debian packages (no download at run time): Fashion-MNIST's IDX files.
# The tests need them; without them the ABN recipes cannot run, so a failed install stops here.
FASHION=/usr/share/datasets/fashion-mnist
if [ ! -d "$FASHION" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  if ! command -v apt-get >/dev/null; then
    echo "setup: $FASHION is missing and this machine has no apt-get; install Debian's dataset-fashion-mnist" >&2
    exit 1
  fi
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist; } \
    >/tmp/attnlab-setup-apt.log 2>&1 || [ ! -d "$FASHION" ]; then
    echo "setup: could not install Debian's dataset-fashion-mnist (see /tmp/attnlab-setup-apt.log)" >&2
    exit 1
  fi
fi
.venv/bin/python -c 'import torch, attnlab; print(f"attnlab {attnlab.__version__} ready: torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")'
