"""docs/rnd.md's 3-seed tables and figure from the runs of scripts/rnd_runs.sh.

    python scripts/rnd_table.py RUNS_DIR [--figure PATH]

Runs are named ``<task>-<method>-s<seed>`` (``doorkey-trnd1-s0``, ``multiroom-ppo-s2``). Per task
and method: the test return of each seed, its mean ± sd, the random policy's on the same seeds,
cells per test episode, the validation return at the first checks (mean over seeds), and the
distinct cells visited over the run; the figure draws validation return and distinct cells against
environment steps (mean over seeds, the band from the lowest to the highest seed).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

NAME = re.compile(r"(?P<task>[a-z0-9]+)-(?P<method>[a-z0-9]+)-s(?P<seed>\d+)$")
METHODS = {"ppo": "PPO", "rnd": "PPO + RND (n = 0)", "trnd1": "PPO + transition-RND (n = 1)",
           "trnd2": "PPO + transition-RND (n = 2)", "trnd4": "PPO + transition-RND (n = 4)"}  # fmt: skip


def scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    events = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


def groups(root: Path) -> dict[tuple[str, str], list[Path]]:
    found: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for run in sorted(root.iterdir()):
        match = NAME.match(run.name)
        if match and (run / "metrics.json").is_file() and match["method"] in METHODS:
            found[(match["task"], match["method"])].append(run)
    return found


def spread(values: list[float]) -> str:
    return (
        f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"
        if len(values) > 1
        else f"{values[0]:.3f}"
    )


def table(task: str, found: dict[tuple[str, str], list[Path]]) -> list[str]:
    rows = ["| method | seeds | test return per seed | mean ± sd | val return at 41k / 82k / 123k / 200k | "
            "cells / test episode | distinct cells over the run |", "|" + " --- |" * 7]  # fmt: skip
    random_row = None
    for method, label in METHODS.items():
        runs = found.get((task, method), [])
        if not runs:
            continue
        metrics = [json.loads((run / "metrics.json").read_text()) for run in runs]
        returns = [m["test/return"] for m in metrics]
        val = [dict(scalars(run, "val/return")) for run in runs]
        at = [
            statistics.mean(v.get(step, float("nan")) for v in val) for step in (40960, 81920, 122880, 199680)
        ]
        cells = [
            max((c for _, c in scalars(run, "train/cells_visited")), default=float("nan")) for run in runs
        ]
        per_episode = statistics.mean(m["test/cells_per_episode"] for m in metrics)
        rows.append(
            f"| {label} | {len(runs)} | {' / '.join(f'{r:.3f}' for r in returns)} | {spread(returns)} | "
            f"{' / '.join(f'{a:.2f}' for a in at)} | {per_episode:.2f} | {statistics.mean(cells):.0f} |"
        )
        random_row = random_row or [m["test/random_policy_return"] for m in metrics]
    if random_row:
        seeds = " / ".join(f"{r:.3f}" for r in random_row)
        rows.insert(2, f"| random policy | {len(random_row)} | {seeds} | {spread(random_row)} | | | |")
    return rows


def figure(found: dict[tuple[str, str], list[Path]], tasks: list[str], path: Path) -> Path:
    fig, axes = plt.subplots(2, len(tasks), figsize=(5.5 * len(tasks), 7), squeeze=False)
    for col, task in enumerate(tasks):
        for method, label in METHODS.items():
            runs = found.get((task, method), [])
            for row, tag in enumerate(("val/return", "train/cells_visited")):
                curves = [scalars(run, tag) for run in runs]
                curves = [c for c in curves if c]
                if not curves:
                    continue
                steps = np.array([s for s, _ in curves[0]])
                values = np.array([[v for _, v in c][: len(steps)] for c in curves if len(c) >= len(steps)])
                ax = axes[row, col]
                (line,) = ax.plot(steps, values.mean(0), label=label)
                ax.fill_between(steps, values.min(0), values.max(0), color=line.get_color(), alpha=0.15)
                ax.set(xlabel="environment steps", ylabel=tag, title=task)
                ax.xaxis.set_major_formatter(lambda x, _: f"{x / 1000:.0f}k")
        axes[0, col].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args()
    found = groups(args.runs)
    tasks = sorted({task for task, _ in found})
    if not tasks:
        raise SystemExit(f"no finished runs named <task>-<method>-s<seed> under {args.runs}")
    for task in tasks:
        print(f"\n{task}\n")
        print("\n".join(table(task, found)))
    if args.figure is not None:
        print(figure(found, tasks, args.figure))


if __name__ == "__main__":
    main()
