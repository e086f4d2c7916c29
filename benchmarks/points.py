"""PointPillars on one synthetic LiDAR scene: pillarisation, the detector's forward, explanations.

    python -m benchmarks.points                  # CPU, one thread, pointpillars-small and the full preset
    python -m benchmarks.points --device cuda    # the same on a GPU

Cases (medians of interleaved repeats; scene 0 of seed 0 as the test split serves it: points in the
camera's view and the model's range):
1. pillarisation: :func:`attnlab.models.pointpillars.pillars.pillarize` against a straightforward
   per-point Python loop over numpy rows (the same rule: first pillars first, 32 points a pillar,
   the pillar cap; checked equal), as points/s, for both presets' grids, on the reduced scene and
   on the whole 360-degree scan (most of its points outside the range).
2. the detector's forward (pillars, networks, decoding and NMS), ms per scene, both presets.
3. explaining every box of the scene (ODAM with its 7 box maps, Guided Grad-CAM, Guided ODAM):
   the boxes' windows batched (:func:`attnlab.explain.points.explain_boxes`, the default) against
   the whole pseudo-image one box and output at a time (``batched=False``). Target (issue 20): the
   batched path at least 3x faster. Boxes: the untrained detector's 50 best at score threshold 0
   (the cost does not depend on the weights); the full preset's first 8 boxes (one at a time takes
   about 9 s a box there on one CPU thread).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from attnlab.data.kitti_scenes import SynthKittiData
from attnlab.data.synth_kitti import generate_scene
from attnlab.explain.points import METHODS, explain_boxes, select_boxes
from attnlab.models import create_model
from attnlab.models.outputs import Detections3D
from attnlab.models.pointpillars.detector import PointPillars
from attnlab.models.pointpillars.pillars import PillarConfig, pillarize
from benchmarks.harness import Result, device_info, measure, report

PRESETS = ("pointpillars-small", "pointpillars")


def scene_points(point_range: tuple[float, ...]) -> torch.Tensor:
    """Scene 0 of seed 0, reduced to the camera's view and ``point_range`` as the datamodule does."""
    data = SynthKittiData(seed=0, test_size=1, point_range=point_range)
    return data.dataset("test")[0].points  # type: ignore[index]


def loop_pillarize(points: np.ndarray, cfg: PillarConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The baseline: one point at a time, a dict from cell to pillar; (P, M, 4) points, counts, cells."""
    x0, y0, z0, x1, y1, z1 = cfg.point_range
    vx, vy, _ = cfg.voxel_size
    ny, nx = cfg.grid_size
    m = cfg.max_points_per_pillar
    pillar_of: dict[tuple[int, int], int] = {}
    slots: list[list[np.ndarray]] = []
    for row in points:
        x, y, z = float(row[0]), float(row[1]), float(row[2])
        if not (x0 <= x < x1 and y0 <= y < y1 and z0 <= z < z1):
            continue
        cell = (math.floor((y - y0) / vy), math.floor((x - x0) / vx))  # the division rounded, as torch
        if cell[0] >= ny or cell[1] >= nx:
            continue
        if cell not in pillar_of:
            if len(pillar_of) == cfg.max_pillars:
                continue
            pillar_of[cell] = len(slots)
            slots.append([])
        held = slots[pillar_of[cell]]
        if len(held) < m:
            held.append(row)
    out = np.zeros((len(slots), m, points.shape[1]), dtype=points.dtype)
    for p, held in enumerate(slots):
        out[p, : len(held)] = held
    return out, np.array([len(h) for h in slots]), np.array(list(pillar_of))


def pillar_case(
    cloud: torch.Tensor, preset: str, what: str, device: torch.device, repeats: int
) -> list[Result]:
    cfg = create_model(preset).config.pillars
    on_device = cloud.to(device)
    numpy_cloud = cloud.numpy()
    ours = pillarize([on_device], cfg)
    loop_points, loop_counts, loop_cells = loop_pillarize(numpy_cloud, cfg)
    assert np.array_equal(ours.points.cpu().numpy(), loop_points), "pillarize and the loop disagree"
    assert np.array_equal(ours.num_points.cpu().numpy(), loop_counts)
    assert np.array_equal(ours.coords[:, 1:].cpu().numpy(), loop_cells)
    variants: dict[str, Callable[[], object]] = {
        "pillarize (torch)": lambda: pillarize([on_device], cfg),
        "per-point loop (numpy rows)": lambda: loop_pillarize(numpy_cloud, cfg),
    }
    results = measure(
        f"pillarise {what}, {preset} grid, {len(cloud)} points, {len(ours.num_points)} pillars",
        variants, baseline="per-point loop (numpy rows)", device=device, repeats=repeats, warmup=1,
    )  # fmt: skip
    for r in results:
        r.variant += f" ({len(cloud) / r.median_ms / 1e3:.2f} M points/s)"
    return results


def forward_case(
    model: PointPillars, preset: str, cloud: torch.Tensor, device: torch.device, repeats: int
) -> list[Result]:
    def run() -> object:
        with torch.inference_mode():
            return model([cloud])

    case = f"forward, one scene, {len(cloud)} points"
    return measure(case, {preset: run}, baseline=preset, device=device, repeats=repeats)


def explain_case(
    model: PointPillars,
    preset: str,
    cloud: torch.Tensor,
    det: Detections3D,
    device: torch.device,
    repeats: int,
) -> list[Result]:
    batched = explain_boxes(model, cloud, det, methods=METHODS)
    whole = explain_boxes(model, cloud, det, methods=METHODS, batched=False)
    worst = max(float((batched.maps[m] - whole.maps[m]).abs().max()) for m in METHODS)
    variants: dict[str, Callable[[], object]] = {
        "windows, batched": lambda: explain_boxes(model, cloud, det, methods=METHODS),
        "whole image, one box at a time": lambda: explain_boxes(
            model, cloud, det, methods=METHODS, batched=False
        ),
    }
    results = measure(
        f"explain {len(det.labels)} boxes, {preset} (largest map difference {worst:.1e})",
        variants, baseline="whole image, one box at a time", device=device, repeats=repeats, warmup=1,
    )  # fmt: skip
    for r in results:
        r.variant += f" ({r.median_ms / len(det.labels):.0f} ms a box)"
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/points.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    results: list[Result] = []
    whole = torch.from_numpy(generate_scene(0, 0).points)  # the raw 360-degree scan, before reduction
    for preset, boxes, repeats in (
        (PRESETS[0], 50, args.repeats),
        (PRESETS[1], 8, max(1, args.repeats // 2)),
    ):
        torch.manual_seed(0)
        model = create_model(preset, score_threshold=0.0).eval().to(device)
        cloud = scene_points(model.config.pillars.point_range).to(device)
        results += pillar_case(cloud.cpu(), preset, "the reduced scene", device, repeats)
        results += pillar_case(whole, preset, "the whole scan", device, repeats)
        results += forward_case(model, preset, cloud, device, repeats)
        with torch.no_grad():
            det = model([cloud]).detections[0]  # type: ignore[index]
        results += explain_case(model, preset, cloud, select_boxes(det, slice(0, boxes)), device, repeats)
    report("PointPillars: pillars, forward, explanations", results, device_info(device), args.out)


if __name__ == "__main__":
    main()
