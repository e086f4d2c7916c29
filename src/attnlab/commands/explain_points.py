"""``attnlab explain RUN_DIR`` for a LiDAR detector run (task ``detection3d``): mAPB per class.

:func:`explain_detection_run` builds the run's PointPillars and test scenes through the engine,
loads its final weights, explains every detected box of the first ``limit`` test scenes with
:func:`attnlab.explain.points.explain_boxes` (ODAM, Guided Grad-CAM, Guided ODAM and the random and
uniform floors) and writes, beside earlier ones, ``explanations/<time>-points.md`` (the mAPB table
per class), ``.json`` (every number and the settings), ``-bev.png`` (boxes of one scene from above,
points coloured by each method) and ``-ply/`` (one PLY per method and box of the picture).

One more floor, ``--untrained-floor`` (on by default): the same methods with the run's *initial*
weights (the seed's, before training), explaining the trained detector's boxes (same anchors,
classes and boxes). It measures how much of a method's mAPB comes from the box and the
receptive field alone, before the detector learnt anything.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from attnlab.errors import ConfigError, InputError, RunDirError
from attnlab.explain.point_render import plot_bev_attention, write_ply
from attnlab.explain.points import FLOORS, METHODS, BoxExplanations, explain_boxes, mapb_table, scene_shares
from attnlab.files import atomic_write
from attnlab.models.pointpillars.detector import PointPillars
from attnlab.runs import rundir
from attnlab.runs.spec import RunSpec, resolve
from attnlab.runs.weights import load_initial_weights
from attnlab.train.engine import build

TASK = "detection3d"
FOLDER = "explanations"
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
    ply: list[Path]
    boxes: int  # explained boxes


def _check(run_dir: Path, limit: int, methods: Sequence[str]) -> tuple[rundir.RunDir, RunSpec]:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigError(f"--limit must be a positive number of test scenes, got {limit!r}")
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
    figure_boxes: int = 3,
) -> PointsExplanation:
    """mAPB of ``methods`` over every detected box of the first ``limit`` test scenes (module docstring)."""
    run, spec = _check(Path(run_dir), limit, methods)
    model, initial, data = _models(spec, run.weights, untrained_floor)
    scenes = data.dataset("test")
    names = tuple(model.class_names)
    shares: dict[str, list[torch.Tensor]] = {}
    labels: list[torch.Tensor] = []
    shown: tuple[torch.Tensor, BoxExplanations] | None = None
    gen = torch.Generator().manual_seed(spec.seed)
    started = time.perf_counter()
    count = min(limit, len(scenes))  # type: ignore[arg-type]
    for i in range(count):
        cloud = scenes[i].points
        with torch.no_grad():
            det = model([cloud]).detections[0]  # type: ignore[index]
        if len(det.labels) == 0:
            continue
        explained = explain_boxes(model, cloud, det, methods=methods, generator=gen)
        found = scene_shares(explained)
        if initial is not None:
            learnt = [m for m in methods if m in METHODS]
            floor = explain_boxes(initial, cloud, det, methods=learnt) if learnt else None
            found |= {} if floor is None else {UNTRAINED + m: s for m, s in scene_shares(floor).items()}
        for method, values in found.items():
            shares.setdefault(method, []).append(values)
        labels.append(det.labels)
        if shown is None or len(set(det.labels.tolist())) > len(set(shown[1].labels.tolist())):
            shown = (cloud, explained)  # the scene with the most classes detected
    if not labels:
        raise InputError(f"the detector found no box in the first {count} test scenes: nothing to explain")
    all_labels = torch.cat(labels)
    table = mapb_table({m: torch.cat(v) for m, v in shares.items()}, all_labels, names)
    seconds = time.perf_counter() - started
    stem = rundir.new_stem(
        Path(out) if out is not None else run.path / FOLDER, f"{time.strftime('%Y%m%d-%H%M%S')}-points"
    )
    figure, plys = _pictures(shown, stem, methods, names, figure_boxes)
    info = {
        "run": str(run.path),
        "model": spec.model_name,
        "data": spec.data_name,
        "split": "test",
        "scenes": count,
        "boxes": len(all_labels),
        "layer": "pseudo_image (the Pillar Feature Net's output)",
        "normalisation": "ODAM / Grad-CAM maps min-max per box over the grid; g_input = L2 norm of the "
        "point's 4 guided gradients over the scene's maximum; guided-odam (odam + g)^2, "
        "guided-gradcam gradcam * g",
        "seconds": round(seconds, 1),
        "mapb": table,
        "thesis": THESIS,
    }
    stem.parent.mkdir(parents=True, exist_ok=True)
    saved = stem.with_suffix(".json")
    text = json.dumps(info, indent=2)
    atomic_write(saved, lambda f: f.write(text.encode()))
    report = stem.with_suffix(".md")
    lines = _report_lines(info, names, figure)
    atomic_write(report, lambda f: f.write("\n".join(lines).encode()))
    return PointsExplanation(report, saved, figure, plys, len(all_labels))


def _pictures(
    shown: tuple[torch.Tensor, BoxExplanations] | None,
    stem: Path,
    methods: Sequence[str],
    names: Sequence[str],
    figure_boxes: int,
) -> tuple[Path | None, list[Path]]:
    """The BEV grid of up to ``figure_boxes`` boxes (one per class first) and their PLY files."""
    if shown is None or figure_boxes < 1:
        return None, []
    cloud, ex = shown
    firsts = [int((ex.labels == k).nonzero()[0]) for k in range(len(names)) if (ex.labels == k).any()]
    rest = [i for i in range(len(ex.labels)) if i not in firsts]
    rows = (firsts + rest)[:figure_boxes]
    drawn = [m for m in methods if m in METHODS] or list(methods)
    titles = [f"{names[int(ex.labels[r])]} {float(ex.scores[r]):.2f}" for r in rows]
    maps = {m: [ex.maps[m][r] for r in rows] for m in drawn}
    figure = plot_bev_attention(
        cloud, maps, [ex.boxes[r] for r in rows], Path(f"{stem}-bev.png"), titles=titles
    )
    folder = Path(f"{stem}-ply")
    plys = [
        write_ply(folder / f"box{r}-{names[int(ex.labels[r])]}-{m}.ply", cloud, ex.maps[m][r])
        for r in rows
        for m in drawn
    ]
    return figure, plys


def _report_lines(info: dict[str, Any], names: Sequence[str], figure: Path | None) -> list[str]:
    table = info["mapb"]
    head = "| method | " + " | ".join(names) + " | thesis (" + " / ".join(names) + ") |"
    lines = [
        f"# mAPB: {info['model']} on {info['data']} (test split)",
        "",
        f"Run `{info['run']}`, final weights; {info['boxes']} detected boxes in {info['scenes']} test "
        f"scenes; layer {info['layer']}. mAPB (%) = mean over boxes of the attention inside the predicted "
        "box over the attention on all points; per predicted class (boxes per class in brackets). "
        f"{info['seconds']} s.",
        "",
        head,
        "|" + " --- |" * (len(names) + 2),
    ]
    for method, row in table.items():
        cells = [f"{row[n]:.2f} ({int(row['n/' + n])})" for n in names]
        thesis = THESIS.get(method)
        quoted = " / ".join(f"{thesis[n]:.2f}" for n in names) if thesis else ""
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {quoted} |")
    lines += ["", f"Normalisation: {info['normalisation']}.", ""]
    if figure is not None:
        lines += [f"![Boxes from above, points coloured by each method]({figure.name})", ""]
    return lines
