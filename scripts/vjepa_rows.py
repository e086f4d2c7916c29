"""docs/vjepa.md's probe rows from finished ``vjepa`` runs, one row per run and, with ``--seeds``, one
mean ± sd row per group of run folders ``NAME-sS``.

    python scripts/vjepa_rows.py RUN [RUN ...] [--seeds] [--evaluated]

Each cell is test accuracy % "appearance / motion" of the run's frozen probes (``probe/...``: the
target encoder; ``floor/...``: a random encoder of the same architecture, same probes and clips).
``--evaluated`` reads each run's newest ``attnlab evaluate`` result (``evaluations/final-*.json``)
instead of the metrics it finished with.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

SEED_SUFFIX = re.compile(r"-s\d+$")
CELLS = [
    ("probe", "attentive"),
    ("probe", "average"),
    ("floor", "attentive"),
    ("floor", "average"),
]
LABELS = ("appearance", "motion")


def read(run: Path, evaluated: bool) -> list[float] | None:
    """The run's 8 accuracies % (cells x labels) and its train seconds; None while it is unfinished
    (or, with ``evaluated``, not evaluated again)."""
    info, metrics = run / "run.json", run / "metrics.json"
    if evaluated:
        evaluations = sorted((run / "evaluations").glob("final-*.json"), key=lambda p: p.stat().st_mtime)
        if not evaluations:
            return None
        metrics = evaluations[-1]
    if not metrics.is_file():
        return None
    values = json.loads(metrics.read_text())
    row = [100 * values[f"test/{encoder}/{pool}/{label}_acc"] for encoder, pool in CELLS for label in LABELS]
    return [*row, json.loads(info.read_text()).get("train_seconds", float("nan"))]


def cells(values: list[list[float]]) -> str:
    """'a / m' per probe, mean ± sd where several runs are given, then the train seconds."""
    columns = list(zip(*values, strict=True))
    shown = []
    for i in range(0, 2 * len(CELLS), 2):
        pair = []
        for column in columns[i : i + 2]:
            sd = f" ± {statistics.stdev(column):.1f}" if len(column) > 1 else ""
            pair.append(f"{statistics.mean(column):.1f}{sd}")
        shown.append(" / ".join(pair))
    seconds = "" if len(values) > 1 else f"{columns[-1][0]:.0f}"
    return " | ".join([*shown, seconds])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--seeds", action="store_true", help="one mean ± sd row per NAME-sS group")
    parser.add_argument("--evaluated", action="store_true", help="the newest `attnlab evaluate` results")
    args = parser.parse_args()
    print("| run | attentive | average | floor attentive | floor average | train s |")
    print("| --- | --- | --- | --- | --- | ---: |")
    groups: dict[str, list[list[float]]] = defaultdict(list)
    for run in args.runs:
        row = read(run, args.evaluated)
        if row is None:
            missing = "not evaluated again" if args.evaluated else "unfinished"
            print(f"| {run.name} | {missing} |  |  |  |  |")
            continue
        print(f"| {run.name} | {cells([row])} |")
        groups[SEED_SUFFIX.sub("", run.name)].append(row)
    if args.seeds:
        for name, rows in groups.items():
            print(f"| {name}: mean ± sd of {len(rows)} | {cells(rows)} |")


if __name__ == "__main__":
    main()
