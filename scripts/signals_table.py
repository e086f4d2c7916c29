"""Markdown rows (mean ± std over seeds) of the signal runs under a folder (scripts/signals_runs.sh).

    PYTHONPATH=src python scripts/signals_table.py runs/signals

Run folders are named ``<model preset>-s<seed>``; each row also lists the per-seed accuracies.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/signals")
    accs: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for metrics in sorted(root.glob("*/metrics.json")):
        match = re.fullmatch(r"(.+)-s(\d+)", metrics.parent.name)
        if match:
            accs[match[1]].append((int(match[2]), json.loads(metrics.read_text())["test/acc"]))
    print("| model | test accuracy % (mean ± std) | per seed |")
    print("| --- | --- | --- |")
    for name, runs in accs.items():
        values = [100 * a for _, a in sorted(runs)]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        seeds = ", ".join(f"s{s}: {100 * a:.1f}" for s, a in sorted(runs))
        print(f"| {name} | {statistics.mean(values):.1f} ± {spread:.1f} | {seeds} |")


if __name__ == "__main__":
    main()
