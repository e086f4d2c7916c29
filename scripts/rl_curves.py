"""Learning curves of finished DQN runs, mean and spread over seeds, one line per recipe.

    python scripts/rl_curves.py OUT.png --runs "aqt-nav=/work/runs/nav100/aqt-nav-s*" \
        --runs "cnn_dqn-nav=/work/runs/nav100/cnn_dqn-nav-s*" [--bins 24]

Left: the training episodes' return, averaged in equal bins of environment steps per run, then
over the runs (band: min to max over seeds). Right: the validation return (greedy, fixed seeds)
at each validation. The dashed line is the random policy's test return (the floor), the mean of
the runs' ``test/random_policy_return``.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from attnlab.train.report import read_scalars


def binned(points: list[tuple[int, float]], edges: np.ndarray) -> np.ndarray:
    """Mean value of the points in each step bin (NaN where a bin is empty)."""
    steps = np.array([s for s, _ in points])
    values = np.array([v for _, v in points])
    which = np.digitize(steps, edges[1:-1])
    return np.array(
        [values[which == b].mean() if (which == b).any() else np.nan for b in range(len(edges) - 1)]
    )


def draw(ax: plt.Axes, x: np.ndarray, curves: list[np.ndarray], label: str) -> None:
    stack = np.vstack(curves)
    mean = np.nanmean(stack, axis=0)
    (line,) = ax.plot(x, mean, label=f"{label} ({len(curves)} seeds)")
    ax.fill_between(x, np.nanmin(stack, axis=0), np.nanmax(stack, axis=0), color=line.get_color(), alpha=0.2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--runs", action="append", required=True, help="LABEL=GLOB of run folders")
    parser.add_argument("--bins", type=int, default=24)
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    fig, (train_ax, val_ax) = plt.subplots(1, 2, figsize=(11, 4))
    floors = []
    for spec in args.runs:
        label, pattern = spec.split("=", 1)
        runs = [Path(p) for p in sorted(glob.glob(pattern)) if (Path(p) / "metrics.json").is_file()]
        if not runs:
            raise SystemExit(f"no finished run matches {pattern}")
        scalars = [read_scalars(run / "tb") for run in runs]
        last = max(points[-1][0] for s in scalars for points in [s["train/episode_return"]])
        edges = np.linspace(0, last, args.bins + 1)
        draw(
            train_ax,
            (edges[:-1] + edges[1:]) / 2,
            [binned(s["train/episode_return"], edges) for s in scalars],
            label,
        )
        val_steps = np.array([step for step, _ in scalars[0]["val/return"]])
        draw(val_ax, val_steps, [np.array([v for _, v in s["val/return"]]) for s in scalars], label)
        floors += [
            json.loads((run / "metrics.json").read_text())["test/random_policy_return"] for run in runs
        ]
    for ax, what in (
        (train_ax, "training episodes' return"),
        (val_ax, "validation return (evaluation policy)"),
    ):
        ax.axhline(statistics.fmean(floors), color="gray", linestyle="--", label="random policy (test)")
        ax.set_xlabel("environment steps")
        ax.set_title(what)
        ax.legend(fontsize=8)
    fig.suptitle(args.title)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(args.out)


if __name__ == "__main__":
    main()
