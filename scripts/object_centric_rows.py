"""Markdown rows (mean ± sd over seeds) from object-centric run folders named RECIPE-seedS:

python scripts/object_centric_rows.py FOLDER
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
from collections import defaultdict
from pathlib import Path

COLUMNS = {
    "recon MSE": "recon_mse",
    "pred MSE": "pred_mse",
    "FG-ARI": "fg_ari",
    "MOTA %": "mota",
    "MOTP %": "motp",
}
PERCENT = {"mota", "motp"}


def cell(values: list[float], percent: bool) -> str:
    values = [v * 100 if percent else v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "–"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return (
        f"{statistics.mean(values):.1f} ± {spread:.1f}"
        if percent
        else f"{statistics.mean(values):.4f} ± {spread:.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = defaultdict(list)
    for metrics in sorted(args.folder.glob("*-seed*/metrics.json")):
        recipe = re.sub(r"-seed\d+$", "", metrics.parent.name)
        runs[recipe].append({k.removeprefix("test/"): v for k, v in json.loads(metrics.read_text()).items()})
    print("| recipe | seeds | " + " | ".join(COLUMNS) + " |")
    print("| --- | ---: |" + " ---: |" * len(COLUMNS))
    for recipe, rows in runs.items():
        cells = [cell([r.get(key) for r in rows], key in PERCENT) for key in COLUMNS.values()]  # type: ignore[misc]
        print(f"| {recipe} | {len(rows)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
