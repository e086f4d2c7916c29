"""``attnlab explain RUN_DIR`` for a LiDAR detector run (task ``detection3d``): mAPB per class.

:func:`explain_detection_run` builds the run's PointPillars and test scenes through the engine,
loads its final weights, explains every detected box of the first ``limit`` test scenes with
:func:`attnlab.explain.points.explain_boxes` (ODAM, its class-score map alone, Guided Grad-CAM,
Guided ODAM and the random and uniform floors) and writes, beside earlier ones,
``explanations/<time>-points.md`` (mAPB per class over all boxes and over the boxes scoring at
least ``confident``; the deletion test on those), ``.json`` (every number, every box, the
settings), ``-bev.png`` (the surest box of each class from above, points coloured by each method),
``-perspective.png`` (the same boxes through a camera behind each, on the sensor's side) and
``-ply/`` (one PLY per method and box of the pictures).

One more floor, ``untrained_floor`` (on by default): the same methods with the run's *initial*
weights (the seed's, before training) explaining the trained detector's boxes (same anchors,
classes and boxes). It is the model-randomisation check of Adebayo et al. 2018 ("Sanity checks
for saliency maps", arXiv:1810.03292): what a map owes to the box and the network's shape alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from attnlab.errors import ConfigError, InputError, RunDirError
from attnlab.explain.point_render import plot_bev_attention, plot_perspective_attention, write_ply
from attnlab.explain.points import (
    FLOORS,
    METHODS,
    BoxExplanations,
    deletion_scores,
    explain_boxes,
    mapb,
    scene_shares,
    select_boxes,
)
from attnlab.files import atomic_write
from attnlab.layers.rotated_boxes import bev_iou
from attnlab.models.outputs import Detections3D
from attnlab.models.pointpillars.detector import PointPillars
from attnlab.runs import rundir
from attnlab.runs.spec import RunSpec, resolve
from attnlab.runs.weights import load_initial_weights
from attnlab.train.engine import build

TASK = "detection3d"
FOLDER = "explanations"
TRUE_IOU = 0.5  # a detection matching a labelled box of its class (BEV IoU), for the third table
UNTRAINED = "untrained "  # prefix of the untrained-weights floor rows
THESIS = {  # seed 004, table 1 (real KITTI, its own PointPillars): Car, Cyclist, Pedestrian
    "odam": {"Car": 71.39, "Cyclist": 42.65, "Pedestrian": 53.27},
    "guided-gradcam": {"Car": 64.81, "Cyclist": 57.68, "Pedestrian": 60.32},
    "guided-odam": {"Car": 80.56, "Cyclist": 68.00, "Pedestrian": 73.69},
}


def is_detection_run(run_dir: str | Path) -> bool:
    """Whether an existing run folder is a ``detection3d`` run (False for any other or no config)."""
    run = rundir.existing(Path(run_dir))
    return resolve(run.config, []).task_name == TASK


@dataclass(frozen=True)
class PointsExplanation:
    report: Path  # the .md table
    data: Path  # the .json
    figure: Path | None  # the BEV picture
    perspective: Path | None  # the same boxes in perspective
    ply: list[Path]
    boxes: int  # explained boxes


def _check(
    run_dir: Path, limit: int, methods: Sequence[str], confident: float
) -> tuple[rundir.RunDir, RunSpec]:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigError(f"--limit must be a positive number of test scenes, got {limit!r}")
    if not 0.0 <= confident <= 1.0:
        raise ConfigError(f"--confident must be a score in [0, 1], got {confident}")
    bad = [m for m in methods if m not in METHODS + FLOORS]
    if bad:
        raise ConfigError(
            f"unknown point explanation method {', '.join(bad)}; valid: {', '.join(METHODS + FLOORS)}"
        )
    run = rundir.existing(run_dir)
    spec = resolve(run.config, [])
    if spec.task_name != TASK:
        raise ConfigError(f"{run.path} is not a {TASK} run (task '{spec.task_name}')")
    if not run.weights.is_file():
        raise RunDirError(f"{run.path} has no final weights {run.weights.name} (unfinished run?)")
    return run, spec


def _models(spec: RunSpec, weights: Path, untrained: bool) -> tuple[PointPillars, PointPillars | None, Any]:
    task, data = build(spec)
    initial = build(spec)[0].model.eval() if untrained else None  # the seed's weights, before training
    model = task.model
    if not isinstance(model, PointPillars):
        raise ConfigError(f"attnlab explain explains PointPillars detectors, not {type(model).__name__}")
    load_initial_weights(model, weights)
    return model.eval(), initial, data


def explain_detection_run(
    run_dir: str | Path,
    *,
    limit: int = 32,
    out: str | Path | None = None,
    methods: Sequence[str] = METHODS + FLOORS,
    untrained_floor: bool = True,
    confident: float = 0.5,
    deletion: bool = True,
    figure_boxes: int = 3,
) -> PointsExplanation:
    """mAPB of ``methods`` over every detected box of the first ``limit`` test scenes, again over the
    boxes scoring at least ``confident``, and the deletion test on those (module docstring)."""
    run, spec = _check(Path(run_dir), limit, methods, confident)
    model, initial, data = _models(spec, run.weights, untrained_floor)
    scenes = data.dataset("test")
    names = tuple(model.class_names)
    learnt = [m for m in methods if m in METHODS]
    records: list[dict[str, Any]] = []
    best: dict[int, tuple[float, torch.Tensor, BoxExplanations, int]] = {}  # class -> the surest box
    gen = torch.Generator().manual_seed(spec.seed)
    started = time.perf_counter()
    count = min(limit, len(scenes))  # type: ignore[arg-type]
    for i in range(count):
        scene = scenes[i]
        cloud = scene.points
        with torch.no_grad():
            det = model([cloud]).detections[0]  # type: ignore[index]
        if len(det.labels) == 0:
            continue
        explained = explain_boxes(model, cloud, det, methods=methods, generator=gen)
        found = scene_shares(explained)
        maps = {m: explained.maps[m] for m in learnt}
        if initial is not None and learnt:
            floor = explain_boxes(initial, cloud, det, methods=learnt)
            found |= {UNTRAINED + m: s for m, s in scene_shares(floor).items()}
            maps |= {UNTRAINED + m: floor.maps[m] for m in learnt}
        sure = (det.scores >= confident).nonzero().squeeze(1)
        drops: dict[str, torch.Tensor] = {}
        if deletion and len(sure):
            drops = deletion_scores(
                model, cloud, select_boxes(det, sure), {m: v[sure] for m, v in maps.items()},
                explained.inside[sure], generator=gen,
            )  # fmt: skip
        where = {int(j): n for n, j in enumerate(sure.tolist())}
        overlap = _best_iou(det, scene.boxes, scene.labels)
        for j in range(len(det.labels)):
            label, score = int(det.labels[j]), float(det.scores[j])
            records.append({
                "scene": i, "label": names[label], "score": round(score, 4),
                "iou": round(float(overlap[j]), 4),
                "mapb": {m: float(v[j]) for m, v in found.items()},
                "deletion": {m: float(v[where[j]]) for m, v in drops.items()} if j in where else {},
            })  # fmt: skip
            if label not in best or score > best[label][0]:
                best[label] = (score, cloud, explained, j)
    if not records:
        raise InputError(f"the detector found no box in the first {count} test scenes: nothing to explain")
    seconds = time.perf_counter() - started
    tables = {
        "all boxes": _table(records, "mapb", names, lambda r: True),
        f"boxes scoring >= {confident}": _table(records, "mapb", names, lambda r: r["score"] >= confident),
        f"true positives (BEV IoU >= {TRUE_IOU} with a labelled box of the class)": _table(
            records, "mapb", names, lambda r: r["iou"] >= TRUE_IOU
        ),
    }
    removal = _table(records, "deletion", names, lambda r: True) if deletion else {}
    stem = rundir.new_stem(
        Path(out) if out is not None else run.path / FOLDER, f"{time.strftime('%Y%m%d-%H%M%S')}-points"
    )
    figure, perspective, plys = _pictures(
        [best[k] for k in sorted(best)], stem, learnt or list(methods), names, figure_boxes
    )
    info = {
        "run": str(run.path),
        "model": spec.model_name,
        "data": spec.data_name,
        "split": "test",
        "scenes": count,
        "boxes": len(records),
        "confident": confident,
        "layer": "pseudo_image (the Pillar Feature Net's output)",
        "normalisation": "ODAM / Grad-CAM maps min-max per box over the grid; g_input = L2 norm of the "
        "point's 4 guided gradients over the scene's maximum; guided-odam (odam + g)^2, "
        "guided-gradcam gradcam * g",
        "seconds": round(seconds, 1),
        "mapb": tables,
        "deletion": removal,
        "thesis": THESIS,
        "records": records,
    }
    stem.parent.mkdir(parents=True, exist_ok=True)
    saved = stem.with_suffix(".json")
    text = json.dumps(info, indent=2)
    atomic_write(saved, lambda f: f.write(text.encode()))
    report = stem.with_suffix(".md")
    lines = _report_lines(info, names, figure, perspective)
    atomic_write(report, lambda f: f.write("\n".join(lines).encode()))
    return PointsExplanation(report, saved, figure, perspective, plys, len(records))


def _best_iou(det: Detections3D, boxes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(I,) each box's best BEV IoU with a labelled box of its class (0 if none): true positives."""
    if len(boxes) == 0:
        return torch.zeros(len(det.labels))
    iou = bev_iou(det.boxes[:, [0, 1, 3, 4, 6]].detach().double(), boxes[:, [0, 1, 3, 4, 6]].double())
    return (iou * (det.labels[:, None] == labels[None].to(det.labels.device))).amax(1)


def _table(
    records: list[dict[str, Any]], key: str, names: Sequence[str], keep: Callable[[dict[str, Any]], bool]
) -> dict[str, dict[str, float]]:
    """method -> per class mean (%) of ``key`` over the boxes ``keep`` takes (and that have ``key``)."""
    chosen = [r for r in records if keep(r) and r[key]]
    methods = list(dict.fromkeys(m for r in chosen for m in r[key]))
    labels = torch.tensor([names.index(r["label"]) for r in chosen], dtype=torch.long)
    values = {m: torch.tensor([r[key][m] for r in chosen], dtype=torch.float64) for m in methods}
    return {m: mapb(v, labels, names) for m, v in values.items()}


def _pictures(
    shown: list[tuple[float, torch.Tensor, BoxExplanations, int]],
    stem: Path,
    methods: Sequence[str],
    names: Sequence[str],
    figure_boxes: int,
) -> tuple[Path | None, Path | None, list[Path]]:
    """The BEV and perspective grids of the surest box of each class (up to ``figure_boxes``) and
    their PLY files."""
    shown = shown[:figure_boxes]
    if not shown:
        return None, None, []
    titles = [f"{names[int(ex.labels[j])]} {score:.2f}" for score, _, ex, j in shown]
    maps = {m: [ex.maps[m][j] for _, _, ex, j in shown] for m in methods}
    clouds, boxes = [cloud for _, cloud, _, _ in shown], [ex.boxes[j] for _, _, ex, j in shown]
    figure = plot_bev_attention(clouds, maps, boxes, Path(f"{stem}-bev.png"), titles=titles)
    perspective = plot_perspective_attention(
        clouds, maps, boxes, Path(f"{stem}-perspective.png"), titles=titles
    )
    folder = Path(f"{stem}-ply")
    plys = [
        write_ply(folder / f"{names[int(ex.labels[j])]}-{m}.ply", cloud, ex.maps[m][j])
        for _, cloud, ex, j in shown
        for m in methods
    ]
    return figure, perspective, plys


def _markdown(table: dict[str, dict[str, float]], names: Sequence[str], thesis: bool) -> list[str]:
    head = "| method | " + " | ".join(names) + (" | thesis (" + " / ".join(names) + ") |" if thesis else " |")
    lines = [head, "|" + " --- |" * (len(names) + 1 + thesis)]
    for method, row in table.items():
        cells = [f"{row[n]:.2f} ({int(row['n/' + n])})" for n in names]
        quoted = THESIS.get(method)
        extra = (" / ".join(f"{quoted[n]:.2f}" for n in names) if quoted else "") + " |" if thesis else ""
        lines.append(f"| {method} | " + " | ".join(cells) + " |" + (f" {extra}" if thesis else ""))
    return lines


def _report_lines(
    info: dict[str, Any], names: Sequence[str], figure: Path | None, perspective: Path | None
) -> list[str]:
    lines = [
        f"# mAPB: {info['model']} on {info['data']} (test split)",
        "",
        f"Run `{info['run']}`, final weights; {info['boxes']} detected boxes in {info['scenes']} test "
        f"scenes; layer {info['layer']}. mAPB (%) = mean over boxes of the attention inside the predicted "
        "box over the attention on all points; per predicted class (boxes in brackets). "
        f"{info['seconds']} s.",
        "",
    ]
    for title, table in info["mapb"].items():
        lines += [f"## mAPB, {title}", "", *_markdown(table, names, True), ""]
    if info["deletion"]:
        lines += [
            f"## Deletion, boxes scoring >= {info['confident']}",
            "",
            "The box's score after removing as many of the most attended points as the box holds, over "
            "its score before (%; lower is more faithful). `random`: as many random points; `box`: the "
            "points inside the box.",
            "",
            *_markdown(info["deletion"], names, False),
            "",
        ]
    lines += [f"Normalisation: {info['normalisation']}.", ""]
    if figure is not None:
        lines += [f"![The surest box of each class from above, coloured by each method]({figure.name})", ""]
    if perspective is not None:
        lines += [f"![The same boxes from behind, on the sensor's side]({perspective.name})", ""]
    return lines
