"""Rotated bird's-eye-view non-maximum suppression in torch (no compiled kernel).

Greedy NMS as every detector uses it: boxes in decreasing score; a box is kept unless a kept box
overlaps it by more than ``iou_threshold`` (rotated BEV IoU,
:func:`attnlab.layers.rotated_boxes.bev_iou`). The IoU matrix of the candidates is computed once;
the greedy pass is a loop over at most ``len(boxes)`` rows of it (candidates are capped by the
detector's ``nms_pre``). Reference: the ``nms_cuda`` rotated kernel zhulf0804/PointPillars calls
(from mmdet3d's ``iou3d``), same rule.
"""

from __future__ import annotations

import torch

from attnlab.layers.rotated_boxes import bev_iou


def rotated_nms(bev_boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the kept (N, 5) BEV boxes ``(x, y, w, l, ry)``, in decreasing score."""
    if len(bev_boxes) == 0:
        return torch.zeros(0, dtype=torch.long, device=bev_boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    boxes = bev_boxes[order].detach()
    over = bev_iou(boxes, boxes) > iou_threshold  # (N, N)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    over_cpu = over.cpu()
    for i in range(len(boxes)):
        if not suppressed[i]:
            suppressed |= over_cpu[i] & (torch.arange(len(boxes)) > i)
    return order[~suppressed.to(order.device)]
