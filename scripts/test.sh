#!/usr/bin/env bash
# Lint, type-check and test. Extra arguments go to pytest (e.g. -m slow).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
ruff check src tests benchmarks
ruff format --check src tests benchmarks
mypy
pytest "$@"
