"""Training and evaluating a 3-D LiDAR detector (PointPillars) on KITTI-format scenes.

Each step: the model on the batch's ragged clouds, anchor targets from the LiDAR boxes, and the
paper's focal + smooth-L1 (sine difference) + direction terms
(:mod:`attnlab.objectives.pointpillars`). Validation and test: the eval-mode model's decoded,
NMS-filtered boxes of every scene, converted to KITTI detections (those seen by camera 2,
:func:`attnlab.data.kitti_scenes.detections_to_kitti`) and scored at the end of the split by
:func:`attnlab.metrics.kitti_eval.kitti_eval` against the scenes' labels: ``ap_bev/<class>``,
``ap_3d/<class>``, ``ap_bbox/<class>`` and ``aos/<class>`` at moderate difficulty, AP40 (strict
overlaps 0.7 / 0.5 / 0.5), and their class means ``map_bev``, ``map_3d``. At test time the same
numbers for the untrained model (the run's initial weights, kept aside) under ``floor/``, and under
``floor_all_boxes/`` for the untrained model at score threshold 0: its scores sit at the focal
prior (about 0.01), under the detector's 0.1, so ``floor/`` is 0 by construction, while this one
keeps its ``max_num`` best boxes a scene, what chance placement of boxes scores.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import nn

from attnlab.data.kitti_scenes import SceneBatch, detections_to_kitti
from attnlab.errors import ConfigError
from attnlab.metrics.kitti_eval import kitti_eval
from attnlab.metrics.kitti_objects import KittiObjects
from attnlab.models.outputs import PointPillarsOutput
from attnlab.models.pointpillars.detector import PointPillars
from attnlab.objectives.pointpillars import PointPillarsLossConfig, assign_targets, pointpillars_terms
from attnlab.objectives.terms import weighted_sum
from attnlab.runs.config import Optim
from attnlab.train.registry import register_task
from attnlab.train.task import Task

METRICS = {"bev": "ap_bev", "3d": "ap_3d", "bbox": "ap_bbox", "aos": "aos"}
MODERATE = 1


@register_task("detection3d")
class Detection3DTask(Task):
    """PointPillars on LiDAR scenes; KITTI AP (moderate, AP40) per class, untrained floor at test."""

    monitor = "val/map_bev"
    monitor_mode = "max"

    def __init__(
        self,
        *,
        model: nn.Module,
        optim: Optim,
        cls_weight: float = 1.0,
        box_weight: float = 2.0,
        dir_weight: float = 0.2,
        max_figure_scenes: int = 2,
    ) -> None:
        if not isinstance(model, PointPillars):
            raise ConfigError(
                "task 'detection3d' needs a PointPillars model (e.g. model.name: pointpillars-small)"
            )
        super().__init__(model=model, optim=optim)
        if min(cls_weight, box_weight, dir_weight) < 0:
            raise ConfigError("task.cls_weight, box_weight and dir_weight must be >= 0")
        self.loss_cfg = PointPillarsLossConfig(
            cls_weight=cls_weight, box_weight=box_weight, dir_weight=dir_weight
        )
        self.max_figure_scenes = max_figure_scenes
        untrained = copy.deepcopy(model).requires_grad_(False).eval()
        every_box = copy.deepcopy(untrained)
        every_box.config = replace(model.config, score_threshold=0.0)
        self._untrained = [untrained, every_box]  # in a list: not trained, not saved
        self._gts: list[KittiObjects] = []
        self._dts: dict[str, list[KittiObjects]] = {}
        self._shown: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def setup(self, stage: str) -> None:
        data = self.trainer.datamodule
        model: PointPillars = self.model  # type: ignore[assignment]
        names = getattr(data, "class_names", None)
        if names != model.class_names:
            raise ConfigError(
                f"the data's classes {names} differ from the model's anchors {model.class_names}"
            )
        model_range = tuple(model.config.pillars.point_range)
        if tuple(getattr(data, "point_range", ())) != model_range:
            raise ConfigError(f"data.point_range must equal the model's pillar range {model_range}")

    def _terms(self, out: PointPillarsOutput, batch: SceneBatch) -> dict[str, torch.Tensor]:
        model: PointPillars = self.model  # type: ignore[assignment]
        labels = [lab.to(self.device) for lab in batch.labels]
        targets = assign_targets(model.anchors, model.anchor_class, batch.boxes, labels, self.loss_cfg)
        return pointpillars_terms(out, targets, self.loss_cfg)

    def loss_terms(self, batch: SceneBatch) -> dict[str, torch.Tensor]:
        return self._terms(self.model(batch.clouds), batch)

    def metrics(self, batch: SceneBatch) -> dict[str, torch.Tensor]:
        out = self.model(batch.clouds)
        terms = self._terms(out, batch)
        self._gts.extend(batch.objects)
        self._collect("", out, batch)
        if self.trainer.testing:
            for prefix, untrained in zip(("floor/", "floor_all_boxes/"), self._untrained, strict=True):
                self._collect(prefix, untrained.to(self.device)(batch.clouds), batch)
            self._remember(batch, out)
        return {"loss": weighted_sum(terms)} | terms

    def _collect(self, prefix: str, out: PointPillarsOutput, batch: SceneBatch) -> None:
        assert out.detections is not None, "the model decodes boxes in eval mode"
        for det, calib in zip(out.detections, batch.calibs, strict=True):
            self._dts.setdefault(prefix, []).append(
                detections_to_kitti(
                    det.boxes.detach().cpu().double().numpy(),
                    det.scores.detach().cpu().double().numpy(),
                    det.labels.cpu().numpy(),
                    calib,
                )
            )

    def _remember(self, batch: SceneBatch, out: PointPillarsOutput) -> None:
        assert out.detections is not None
        for cloud, boxes, det in zip(batch.clouds, batch.boxes, out.detections, strict=True):
            if len(self._shown) < self.max_figure_scenes:
                keep = det.scores > 0.3
                self._shown.append(
                    (cloud.cpu(), boxes.cpu(), det.boxes[keep].detach().cpu(), det.scores[keep].cpu())
                )

    def _reset(self) -> None:
        self._gts, self._dts = [], {}

    def on_validation_epoch_start(self) -> None:
        self._reset()

    def on_test_epoch_start(self) -> None:
        self._reset()
        self._shown = []

    def on_validation_epoch_end(self) -> None:
        self._log_ap("val")

    def on_test_epoch_end(self) -> None:
        self._log_ap("test")

    def _log_ap(self, split: str) -> None:
        if not self._gts or self.trainer.sanity_checking:
            return
        model: PointPillars = self.model  # type: ignore[assignment]
        for prefix, dts in self._dts.items():
            for name, value in kitti_ap(self._gts, dts, model.class_names).items():
                self.log(f"{split}/{prefix}{name}", value)
        self._reset()

    def report_figures(self, datamodule: L.LightningDataModule, out_dir: Path) -> dict[str, Path]:
        if not self._shown:
            return {}
        path = plot_bev(self._shown, datamodule.point_range, out_dir / "bev_detections.png")  # type: ignore[attr-defined]
        return {
            "Test scenes from above: points, labelled boxes (green), detections scoring > 0.3 (red)": path
        }


def kitti_ap(gts: list[KittiObjects], dts: list[KittiObjects], classes: tuple[str, ...]) -> dict[str, float]:
    """Moderate AP40 (strict overlaps) per metric and class, and class means ``map_bev``, ``map_3d``."""
    result = kitti_eval(gts, dts, classes)
    values: dict[str, float] = {}
    for metric, key in METRICS.items():
        ap = result.ap(metric, 40)  # (classes, difficulty, overlap setting)
        for c, cls in enumerate(classes):
            values[f"{key}/{cls}"] = float(ap[c, MODERATE, 0])
        if metric in ("bev", "3d"):
            values[f"m{key}"] = float(np.mean(ap[:, MODERATE, 0]))
    return values


def plot_bev(
    scenes: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]],
    point_range: tuple[float, ...],
    path: Path,
) -> Path:
    """Bird's-eye view of each scene: points, ground-truth and detected box outlines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from attnlab.layers.rotated_boxes import bev_box_corners

    fig, axes = plt.subplots(1, len(scenes), figsize=(5.5 * len(scenes), 5.5), squeeze=False)
    for ax, (cloud, gt, det, _scores) in zip(axes.flat, scenes, strict=True):
        ax.scatter(cloud[:, 0], cloud[:, 1], s=0.2, c="0.5")
        for boxes, colour in ((gt, "tab:green"), (det, "tab:red")):
            if len(boxes):
                corners = bev_box_corners(boxes[:, [0, 1, 3, 4, 6]].float())  # (N, 4, 2)
                for quad in corners:
                    ring = torch.cat([quad, quad[:1]])
                    ax.plot(ring[:, 0], ring[:, 1], color=colour, lw=1)
        ax.set(xlim=(point_range[0], point_range[3]), ylim=(point_range[1], point_range[4]), aspect="equal")
        ax.set(title=f"{len(gt)} labelled, {len(det)} detected", xlabel="x (m)", ylabel="y (m)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
