"""Start-up cost a user feels: ``import attnlab``, ``attnlab list`` and resolving a recipe.

Each command runs as a fresh process. Two source trees can be compared in one run, interleaved
in a shuffled order per repetition (``--before DIR`` points at another checkout's ``src``), so
the machine's drift falls on both alike. Reports median, min and max wall seconds per command.

    python -m benchmarks.startup --repeats 15
    git worktree add /tmp/before <commit> && python -m benchmarks.startup --before /tmp/before/src
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

SRC = Path(__file__).resolve().parents[1] / "src"
COMMANDS = {
    "import attnlab": "import attnlab",
    "attnlab list": "from attnlab.cli import main; main(['list'])",
    "attnlab list models": "from attnlab.cli import main; main(['list', 'models'])",
    "resolve sfa-vmds": (
        "from attnlab.recipes import recipe_path; from attnlab.runs.spec import resolve; "
        "resolve(recipe_path('sfa-vmds'), [])"
    ),
}
# before the runs/ package existed the spec lived in train/
OLD_SPEC = {
    "resolve sfa-vmds": COMMANDS["resolve sfa-vmds"].replace("attnlab.runs.spec", "attnlab.train.spec")
}


def seconds(code: str, src: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def code_for(name: str, src: Path) -> str:
    old = not (src / "attnlab" / "runs").is_dir()
    return OLD_SPEC.get(name, COMMANDS[name]) if old else COMMANDS[name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--before", type=Path, default=None, help="another checkout's src/ to compare")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/startup.json"))
    args = parser.parse_args()
    trees = {"now": SRC, **({"before": args.before.resolve()} if args.before else {})}
    cases = [(name, tree) for name in COMMANDS for tree in trees]
    times: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
    for name, tree in cases:  # warm the file cache and the .pyc files once
        seconds(code_for(name, trees[tree]), trees[tree])
    for _ in range(args.repeats):
        for name, tree in random.sample(cases, len(cases)):
            times[(name, tree)].append(seconds(code_for(name, trees[tree]), trees[tree]))
    rows = [
        {"command": n, "tree": t, "median_s": statistics.median(v), "min_s": min(v), "max_s": max(v)}
        for (n, t), v in times.items()
    ]
    table = Table(title=f"start-up, {args.repeats} runs each ({platform.processor() or platform.machine()})")
    for column in ("command", "tree", "median s", "min s", "max s"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["command"], row["tree"], *(f"{row[k]:.3f}" for k in ("median_s", "min_s", "max_s")))
    Console().print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    info = {"python": platform.python_version(), "cpus": os.cpu_count(), "repeats": args.repeats}
    args.out.write_text(json.dumps({"info": info, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
