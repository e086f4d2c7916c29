"""Rows of docs/distillation.md's tables from finished ``distill-fmnist`` / ``adapt-fmnist`` runs.

    python scripts/distill_rows.py RUN [RUN ...]
    python scripts/distill_rows.py --seeds RUN [RUN ...]

Per run folder: its command, the test accuracy (%) of the model (the student in a distillation
run), the two teachers' (as they end a distillation run; "-" for an adaptation run), and the
training seconds. ``--seeds`` instead prints one row per group of runs whose folder names differ
only in a ``-sN`` suffix (e.g. ``dino-linear-s1``, ``dino-linear-s2``): every seed's accuracy and
their mean ± sample standard deviation.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

KEYS = ("acc", "acc_teacher1", "acc_teacher2")


def accuracies(run: Path) -> list[float | None]:
    if not (run / "metrics.json").is_file():
        raise SystemExit(f"{run}: no metrics.json (not a finished run)")
    metrics = json.loads((run / "metrics.json").read_text())
    return [100 * metrics[f"test/{key}"] if f"test/{key}" in metrics else None for key in KEYS]


def row(run: Path) -> str:
    info = json.loads((run / "run.json").read_text())
    cells = " | ".join("-" if a is None else f"{a:.2f}" for a in accuracies(run))
    return f"| {run.name} | {cells} | {info['train_seconds']:.0f} | `{info['command']}` |"


def seed_rows(runs: list[Path]) -> list[str]:
    groups: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for run in runs:
        match = re.fullmatch(r"(.+)-s(\d+)", run.name)
        if match is None:
            raise SystemExit(f"{run}: the folder name does not end in -sN (N the seed)")
        accuracy = accuracies(run)[0]
        assert accuracy is not None  # every run reports test/acc
        groups[match[1]].append((int(match[2]), accuracy))
    lines = []
    for name, seeds in sorted(groups.items()):
        seeds.sort()
        values = [a for _, a in seeds]
        spread = statistics.stdev(values) if len(values) > 1 else float("nan")
        per_seed = " / ".join(f"{a:.2f}" for a in values)
        lines.append(
            f"| {name} | {','.join(str(s) for s, _ in seeds)} | {per_seed} | "
            f"{statistics.mean(values):.2f} ± {spread:.2f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--seeds", action="store_true", help="group runs named NAME-sN over N")
    args = parser.parse_args()
    if args.seeds:
        print("| runs | seeds | test accuracy per seed | mean ± sd |")
        print("| --- | --- | ---: | ---: |")
        print("\n".join(seed_rows(args.runs)))
        return
    print("| run | model (student) | DINO teacher | MAE teacher | train s | command |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for run in args.runs:
        print(row(run))


if __name__ == "__main__":
    main()
