"""Rows of docs/distillation.md's student table from finished ``distill-fmnist`` runs.

    python scripts/distill_rows.py RUN [RUN ...]

Per run folder: its command, the student's test accuracy (%), the two teachers' (as they end the
run), and the training seconds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def row(run: Path) -> str:
    metrics = json.loads((run / "metrics.json").read_text())
    info = json.loads((run / "run.json").read_text())
    accs = [100 * metrics[f"test/{key}"] for key in ("acc", "acc_teacher1", "acc_teacher2")]
    cells = " | ".join(f"{a:.2f}" for a in accs)
    return f"| {run.name} | {cells} | {info['train_seconds']:.0f} | `{info['command']}` |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args()
    print("| run | student | DINO teacher | MAE teacher | train s | command |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for run in args.runs:
        print(row(run))


if __name__ == "__main__":
    main()
