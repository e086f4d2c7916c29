"""What a newcomer sees while a run starts: seconds from ``attnlab run RECIPE`` to its first
line, to the line naming its run folder, to the model line, and to the end of the first
training step (its first checkpoint, with ``--trainer.checkpoint_every 1``), one recipe of
each kind. Each run is a fresh process, killed after its first step. Median over repeats.

    python -m benchmarks.first_output --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

# one recipe of each kind, with the overrides that keep its evaluation sets small
RECIPES = {
    "demo": [],
    "vit-fashion_mnist": [],
    "abn-fashion_mnist": [],
    "st_abn-actions": [],
    "sfa-vmds": ["--data.val_size", "16", "--data.test_size", "16"],
    "aloe-frames-clevrer_lite": ["--data.cache_dir", "{cache}"],  # a first run: videos generated
    "gan-points": [],
    "dqn-cartpole": [],
}
LINES = {"first line": "attnlab: starting", "run folder": "attnlab: run folder", "model": "attnlab: model"}


def one_start(recipe: str, extra: list[str], timeout: float) -> dict[str, float]:
    """Seconds to each status line and to the first checkpoint; NaN for what did not come."""
    folder = Path(tempfile.mkdtemp(prefix="first-output-"))
    run_dir = folder / "run"
    argv = [sys.executable, "-m", "attnlab.cli", "run", recipe, "--run-dir", str(run_dir)]
    argv += ["--trainer.checkpoint_every", "1", *(a.format(cache=folder / "cache") for a in extra)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    seen: dict[str, float] = {}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            for name, prefix in LINES.items():
                if line.startswith(prefix) and name not in seen:
                    seen[name] = time.perf_counter() - start

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = start + timeout
    while time.perf_counter() < deadline and proc.poll() is None:
        if (run_dir / "checkpoints" / "last.ckpt").exists():
            seen["first step"] = time.perf_counter() - start
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join(timeout=5)
    shutil.rmtree(folder, ignore_errors=True)
    return {name: seen.get(name, float("nan")) for name in (*LINES, "first step")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/first_output.json"))
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {r: [] for r in args.recipes}
    for _ in range(args.repeats):  # interleaved: the machine's drift falls on every recipe alike
        for recipe in args.recipes:
            results[recipe].append(one_start(recipe, RECIPES.get(recipe, []), args.timeout))
    table = Table(title=f"seconds to what a starting run shows (median of {args.repeats})")
    columns = (*LINES, "first step")
    table.add_column("recipe")
    for column in columns:
        table.add_column(column, justify="right")
    medians = {}
    for recipe, runs in results.items():
        medians[recipe] = {c: statistics.median(r[c] for r in runs) for c in columns}
        table.add_row(recipe, *(f"{medians[recipe][c]:.1f}" for c in columns))
    Console().print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    args.out.write_text(json.dumps({"machine": machine, "medians": medians, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
