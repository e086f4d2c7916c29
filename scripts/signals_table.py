"""Markdown rows (mean ± std over seeds) of the signal runs under one or more folders
(scripts/signals_runs.sh, scripts/signals_windows.sh).

    PYTHONPATH=src python scripts/signals_table.py runs/signals [more folders...] [--seeds 0 1 2]

Run folders are named ``<model preset>[-w<window>]-s<seed>``; the window is read from each
run's config.yaml. One row per preset and window, with the per-seed accuracies; when a preset
was trained with several windows, also one row per preset across the windows.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

import yaml


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", type=Path, nargs="*", default=[Path("runs/signals")])
    parser.add_argument("--seeds", type=int, nargs="+", help="only these seeds (default: all)")
    args = parser.parse_args()
    accs: dict[tuple[str, int], list[tuple[int, float]]] = defaultdict(list)
    for root in args.folders:
        for metrics in sorted(root.glob("*/metrics.json")):
            match = re.fullmatch(r"(.+?)(?:-w\d+)?-s(\d+)", metrics.parent.name)
            if match and (args.seeds is None or int(match[2]) in args.seeds):
                config = yaml.safe_load((metrics.parent / "config.yaml").read_text())
                key = (match[1], int(config["data"]["window"]))
                accs[key].append((int(match[2]), 100 * json.loads(metrics.read_text())["test/acc"]))
    print("| model | window | test accuracy % (mean ± std) | per seed |")
    print("| --- | --- | --- | --- |")
    for (name, window), runs in sorted(accs.items()):
        seeds = ", ".join(f"s{s}: {a:.1f}" for s, a in sorted(runs))
        print(f"| {name} | {window} | {mean_std([a for _, a in runs])} | {seeds} |")
    windows = sorted({w for _, w in accs})
    if len(windows) > 1:
        print(f"\n| model | {' | '.join(str(w) for w in windows)} |")
        print("| --- |" + " --- |" * len(windows))
        for name in sorted({n for n, _ in accs}):
            cells = [mean_std([a for _, a in accs[name, w]]) if (name, w) in accs else "-" for w in windows]
            print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
