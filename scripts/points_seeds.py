"""The tables of docs/points.md over seeds: detection AP and mAPB (mean ± sd over the runs), deletion
(pooled over the runs' boxes).

    python scripts/points_seeds.py RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a finished ``pointpillars-synthkitti`` run with an ``attnlab explain`` output in
``explanations/`` (the newest ``*-points.json`` is read) and, for runs trained before the
``floor_all_boxes/`` floor existed, an ``attnlab evaluate`` of it.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

CLASSES = ("Car", "Pedestrian", "Cyclist")
AP = [f"{m}/{c}" for c in CLASSES for m in ("ap_bev", "ap_3d", "ap_bbox", "aos")] + ["map_bev", "map_3d"]
TP = "true positives (BEV IoU >= 0.5 with a labelled box of the class)"
METHODS = ("odam", "odam-class", "guided-gradcam", "guided-odam", "random", "uniform", "untrained odam",
           "untrained odam-class", "untrained guided-gradcam", "untrained guided-odam")  # fmt: skip


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def run_metrics(run: Path) -> dict[str, float]:
    """The run's test metrics, updated by its newest ``attnlab evaluate`` (which adds the
    ``floor_all_boxes/`` floor to runs trained before it existed)."""
    metrics = json.loads((run / "metrics.json").read_text())
    evaluations = sorted((run / "evaluations").glob("final-*.json"))
    if evaluations:
        found = json.loads(evaluations[-1].read_text())
        metrics |= found.get("metrics", found)
    if "test/floor_all_boxes/map_bev" not in metrics:
        raise SystemExit(
            f"{run}: trained before the floor_all_boxes floor existed; run attnlab evaluate {run}"
        )
    return metrics


def ap_table(runs: list[Path]) -> list[str]:
    metrics = [run_metrics(run) for run in runs]
    rows = ["| " + " | ".join(["row", *AP]) + " |", "|" + " --- |" * (len(AP) + 1)]
    floors = (("untrained (floor)", "test/floor/"), ("untrained, every box (floor)", "test/floor_all_boxes/"))
    for name, prefix in (*floors, ("trained", "test/")):
        rows.append(f"| {name} | " + " | ".join(spread([m[prefix + k] for m in metrics]) for k in AP) + " |")
    for run, m in zip(runs, metrics, strict=True):
        rows.append(f"| {run.name} | " + " | ".join(f"{m['test/' + k]:.2f}" for k in AP) + " |")
    return rows


def explanations(run: Path) -> dict:
    found = sorted((run / "explanations").glob("*-points.json"))
    if not found:
        raise SystemExit(
            f"{run}: no attnlab explain output (explanations/*-points.json); run attnlab explain {run}"
        )
    return json.loads(found[-1].read_text())


def mapb_table(found: list[dict], title: str) -> list[str]:
    rows = [f"mAPB (%), {title}, mean ± sd over runs (boxes, all runs):", "",
            "| method | " + " | ".join(CLASSES) + " |", "|" + " --- |" * (len(CLASSES) + 1)]  # fmt: skip
    for method in METHODS:
        cells = []
        for c in CLASSES:
            per_run = [f["mapb"][title][method] for f in found]
            values = [r[c] for r in per_run if r[f"n/{c}"] > 0]
            count = int(sum(r[f"n/{c}"] for r in per_run))
            cells.append(f"{spread(values)} ({count})" if values else "-")
        rows.append(f"| {method} | " + " | ".join(cells) + " |")
    return rows


def deletion_table(found: list[dict]) -> list[str]:
    records = [r for f in found for r in f["records"] if r["deletion"]]
    names = list(records[0]["deletion"]) if records else []
    rows = ["Deletion, boxes scoring >= 0.5, pooled over runs: score after / before (%):", "",
            "| map | " + " | ".join(CLASSES) + " |", "|" + " --- |" * (len(CLASSES) + 1)]  # fmt: skip
    for name in names:
        cells = []
        for c in CLASSES:
            values = [r["deletion"][name] * 100 for r in records if r["label"] == c]
            cells.append(f"{statistics.mean(values):.2f} ({len(values)})" if values else "-")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    runs = parser.parse_args().runs
    lines = ["KITTI AP40, moderate, strict overlaps (%):", "", *ap_table(runs), ""]
    found = [explanations(run) for run in runs]
    seconds = ", ".join(f"{f['seconds']:.0f} s" for f in found)
    boxes = sum(f["boxes"] for f in found)
    lines += [f"Explained: {boxes} boxes in {found[0]['scenes']} scenes a run ({seconds}).", ""]
    for title in ("all boxes", TP):
        lines += [*mapb_table(found, title), ""]
    lines += deletion_table(found)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
