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
.venv/bin/python -m pip install --quiet -e ".[dev,video,rl,signals,segment,search,points,tta,explore]"

# Debian packages (no download at run time): Fashion-MNIST's IDX files, which the tests and the
# ABN recipes need, and Chromium, which the explorer's browser tests drive through Playwright.
apt_install() {  # PACKAGE PATH: install PACKAGE unless PATH exists; a failure stops the setup
  [ -e "$2" ] && return 0
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  if ! command -v apt-get >/dev/null; then
    echo "setup: $2 is missing and this machine has no apt-get; install Debian's $1" >&2
    exit 1
  fi
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$1"; } \
    >>/tmp/attnlab-setup-apt.log 2>&1 || [ ! -e "$2" ]; then
    echo "setup: could not install Debian's $1 (see /tmp/attnlab-setup-apt.log)" >&2
    exit 1
  fi
}
apt_install dataset-fashion-mnist /usr/share/datasets/fashion-mnist
apt_install chromium /usr/bin/chromium
.venv/bin/python -c 'import torch, attnlab; print(f"attnlab {attnlab.__version__} ready: torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")'
