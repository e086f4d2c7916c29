"""docs/segment.md's exact-box table over seeds from the runs of scripts/sam_exact_seeds.sh.

    python scripts/sam_exact_table.py RUNS_DIR

Runs are named ``exact-s<seed>``, ``exact-dt-s<seed>``, ``exact-pt-s<seed>``, ``exact-le-s<seed>``;
every finished seed counts. Test mIoU per box error (0-40 %), mean ± sd over seeds, single pass and
iterative, the mean number of iterative passes, and the box-as-the-mask floor.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

ERRORS = ("0", "0.1", "0.2", "0.3", "0.4")
ROWS = {"exact": "sam-cells on exact boxes (1500 steps)", "exact-dt": "+ decoder fine-tuning (500 steps)",
        "exact-pt": "+ token and decoder (500 steps)",
        "exact-le": "+ learned embedding and decoder (500 steps)"}  # fmt: skip


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path)
    root = parser.parse_args().runs
    found: dict[str, list[dict[str, float]]] = {name: [] for name in ROWS}
    for run in sorted(root.iterdir()):
        match = re.fullmatch(r"(exact(?:-dt|-pt|-le)?)-s(\d+)", run.name)
        if match and (run / "metrics.json").is_file():
            found[match[1]].append(json.loads((run / "metrics.json").read_text()))
    seeds = len(found["exact"])
    if not seeds:
        raise SystemExit(f"no finished exact-s<seed> run under {root}")
    head = "| model | mode | seeds | " + " | ".join(f"{float(f):.0%}" for f in ERRORS) + " |"
    lines = [head, "| --- | --- | ---: |" + " ---: |" * len(ERRORS)]
    floor = [spread([m[f"test/box_miou_f{f}"] for m in found["exact"]]) for f in ERRORS]
    lines.append(f"| box as the mask (floor) | - | {seeds} | " + " | ".join(floor) + " |")
    for name, label in ROWS.items():
        if not found[name]:
            continue
        for mode, key in (("single pass", "miou"), ("iterative", "iter_miou"), ("mean passes", "iterations")):
            cells = [spread([m[f"test/{key}_f{f}"] for m in found[name]]) for f in ERRORS]
            lines.append(f"| {label} | {mode} | {len(found[name])} | " + " | ".join(cells) + " |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
