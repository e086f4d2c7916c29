"""The LiDAR viewer: a scene's points, true and detected boxes, a detected box's per-point explanation."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import torch

from attnlab.data.kitti import lidar_box_corners
from attnlab.explain.points import explain_boxes
from attnlab.explorer.pictures import unit
from attnlab.explorer.viewers.base import LoadedRun, NotViewable
from attnlab.models.outputs import Detections3D
from attnlab.models.pointpillars.detector import PointPillars

MAX_POINTS = 20_000  # points sent to the page (an even subsample of larger scenes)


POINT_METHODS = ("guided-odam", "odam", "guided-gradcam")


def _boxes(
    boxes: torch.Tensor, labels: torch.Tensor, loaded: LoadedRun, scores: torch.Tensor | None = None
) -> list[dict[str, Any]]:
    """Boxes as the page draws them: 8 corners each (z from the bottom), class, score."""
    corners = lidar_box_corners(boxes.detach().cpu().double().numpy())  # (M, 8, 3)
    return [
        {
            "corners": np.round(c, 2).tolist(),
            "label": loaded.name(k),
            "score": None if scores is None else round(float(scores[i]), 4),
        }
        for i, (c, k) in enumerate(zip(corners, labels, strict=True))
    ]


def view_detection(loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None) -> dict[str, Any]:
    """A LiDAR scene: its points, the ground-truth boxes and the detections; with ``method``
    "<map> <box>" (e.g. "guided-odam 0") the per-point explanation of that detected box."""
    if "points" not in example:
        raise NotViewable(
            "a LiDAR detector takes point clouds; upload a picture to an image classifier's run"
        )
    model, cloud = loaded.task.model, example["points"]
    assert isinstance(model, PointPillars)  # the detection3d task's model
    with torch.no_grad():
        found = model([cloud]).detections
    assert found is not None  # eval mode
    (detections,) = found
    keep = torch.linspace(0, len(cloud) - 1, min(len(cloud), MAX_POINTS)).round().long()  # (P,)
    maps = []
    if method is not None:
        name, _, box = method.partition(" ")
        if name not in POINT_METHODS or not box.isdigit() or int(box) >= len(detections.labels):
            choices = (
                f"a map ({', '.join(POINT_METHODS)}) and one of the {len(detections.labels)} detected boxes"
            )
            raise NotViewable(f"pick {choices}")
        one = Detections3D(
            *(getattr(detections, f.name)[int(box) : int(box) + 1] for f in fields(Detections3D))
        )
        explained = explain_boxes(model, cloud, one, methods=(name,))
        maps.append({"name": f"{name}, box {box}", "values": unit(explained.maps[name][0][keep])})
    return {
        "input": {
            "kind": "points",
            "points": np.round(cloud[keep, :3].cpu().numpy(), 2).tolist(),
            "truth": _boxes(example["boxes"], example["labels"], loaded),
            "detections": _boxes(detections.boxes, detections.labels, loaded, detections.scores),
        },
        "prediction": [],
        "target": None,
        "maps": maps,
        "methods": list(POINT_METHODS),
    }
