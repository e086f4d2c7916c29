"""Rows of a results table from finished runs' ``metrics.json``: per seed, then mean (sd) per label.

    python scripts/rl_rows.py --runs "aqt-nav=/work/runs/nav100/aqt-nav-s*" \
        --metrics test/success_rate test/collisions test/return [--floor test/random_policy_]

With ``--floor PREFIX`` each run's floor (the same metric names after PREFIX, e.g. the random
policy's on the same seeds) gets its own rows.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
from pathlib import Path


def row(label: str, values: list[list[float]], names: list[str]) -> str:
    """``label`` and, per metric, the mean (sd) over runs."""
    cells = []
    for i in range(len(names)):
        column = [v[i] for v in values]
        sd = statistics.pstdev(column) if len(column) > 1 else 0.0
        cells.append(f"{statistics.fmean(column):.3f} ({sd:.3f})")
    return f"| {label}, mean (sd) of {len(values)} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", action="append", required=True, help="LABEL=GLOB of run folders")
    parser.add_argument("--metrics", nargs="+", required=True)
    parser.add_argument(
        "--floor", default=None, help="metric prefix of the floor policy, e.g. test/random_policy_"
    )
    args = parser.parse_args()
    names = args.metrics
    print("| runs | " + " | ".join(names) + " |")
    print("| --- |" + " ---: |" * len(names))
    summary = []
    for spec in args.runs:
        label, pattern = spec.split("=", 1)
        runs = [Path(p) for p in sorted(glob.glob(pattern)) if (Path(p) / "metrics.json").is_file()]
        kinds = {label: names}
        if args.floor:
            kinds[f"{label}: floor"] = [n.replace("test/", args.floor, 1) for n in names]
        for kind, keys in kinds.items():
            values = []
            for run in runs:
                metrics = json.loads((run / "metrics.json").read_text())
                values.append([metrics[k] for k in keys])
                print(f"| {kind} {run.name} | " + " | ".join(f"{v:.3f}" for v in values[-1]) + " |")
            if values:
                summary.append(row(kind, values, names))
    print("\n".join(summary))


if __name__ == "__main__":
    main()
