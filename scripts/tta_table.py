"""docs/tta.md's table over seeds, from ``attnlab tta`` outputs and the classifier runs.

    python scripts/tta_table.py RUNS_DIR [--seeds 0 1 2] [--eval eval]

RUNS_DIR holds, per seed S and classifier C (``cnn5``, ``resnet20``): the classifier run ``C-sS``,
the ceiling ``C_target-sS`` (the same recipe with ``--data.name target-digits``; optional), and the
evaluation ``eval-C-sS`` written by

    attnlab tta RUNS_DIR/C-sS --translator RUNS_DIR/stargan2-sS --translator RUNS_DIR/stargan2_ca-sS \\
        --out RUNS_DIR/eval-C-sS

``--eval eval-1500`` reads ``eval-1500-C-sS`` instead (the first recipes' 1,500-batch translators, in
run folders ``stargan2_1500-sS`` and ``stargan2_ca_1500-sS``).

Each cell is the mean ± sd over the seeds of the accuracy (%) on the target test images, with the
seeds' values beside it; a row's translator is named by its run folder without ``-sS``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

CLASSIFIERS = {"cnn5": "5-layer CNN", "resnet20": "ResNet-20"}
LABELS = {
    "none": "no translation",
    "crop": "floor: crop TTA",
    "flip+crop": "floor: flip + crop TTA",
    "stargan2": "StarGAN v2",
    "stargan2_ca": "class-aware StarGAN v2",
    "stargan2_1500": "StarGAN v2",
    "stargan2_ca_1500": "class-aware StarGAN v2",
}
SEED_SUFFIX = re.compile(r"-s\d+$")


def accuracies(runs: Path, evaluation: str, classifier: str, seed: int) -> dict[tuple[str, int], float]:
    """(method, N) -> accuracy % of one ``attnlab tta`` output."""
    rows = json.loads((runs / f"{evaluation}-{classifier}-s{seed}" / "tta.json").read_text())["rows"]
    return {(SEED_SUFFIX.sub("", r["method"]), r["n"]): 100 * r["accuracy"] for r in rows}


def ceiling(runs: Path, classifier: str, seed: int) -> float | None:
    metrics = runs / f"{classifier}_target-s{seed}" / "metrics.json"
    return 100 * json.loads(metrics.read_text())["test/acc"] if metrics.is_file() else None


def cell(values: list[float]) -> str:
    if not values:
        return "-"
    seeds = " / ".join(f"{v:.1f}" for v in values)
    if len(values) == 1:
        return seeds
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f} ({seeds})"


def table(runs: Path, seeds: list[int], evaluation: str) -> str:
    per = {c: [accuracies(runs, evaluation, c, s) for s in seeds] for c in CLASSIFIERS}
    keys = list(per["cnn5"][0])
    seed_list = ", ".join(map(str, seeds))
    head = " | ".join(f"{name}: mean ± sd (seeds {seed_list})" for name in CLASSIFIERS.values())
    lines = [f"| method | N | {head} |", "| --- | ---: |" + " ---: |" * len(CLASSIFIERS)]
    for method, n in keys:
        cells = [cell([seed_rows[(method, n)] for seed_rows in per[c]]) for c in CLASSIFIERS]
        shown = "-" if method == "none" else str(n)
        lines.append(f"| {LABELS.get(method, method)} | {shown} | " + " | ".join(cells) + " |")
    ceilings = [cell([v for s in seeds if (v := ceiling(runs, c, s)) is not None]) for c in CLASSIFIERS]
    lines.append("| ceiling: trained on the target's labels | - | " + " | ".join(ceilings) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval", default="eval", help="the evaluations' folder prefix")
    args = parser.parse_args()
    print(table(args.runs, args.seeds, args.eval))


if __name__ == "__main__":
    main()
