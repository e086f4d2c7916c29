"""PointPillars' losses (Lang et al., CVPR 2019, arXiv:1812.05784, section 3) as named terms.

Targets: each anchor is matched to the ground truth of its own class by bird's-eye IoU of the
boxes turned to their nearest axis (SECOND / mmdet3d's ``nearest_bev``): positive at IoU >=
the class's positive threshold, negative below its negative one (Car 0.6 / 0.45, Pedestrian
and Cyclist 0.5 / 0.35), ignored between; each box's best anchors (every anchor at its largest
IoU, when above 0) are positive too. Terms, each divided by the number of positive anchors:

- ``cls``: sigmoid focal loss (alpha 0.25, gamma 2) over positive and negative anchors, one
  binary target per class (negatives: all zero), weight 1;
- ``box``: smooth-L1 (beta 1/9) on the seven residuals of :mod:`attnlab.models.pointpillars.box_coder`,
  the heading term with SECOND's sine-difference ``sin(r_p - r_t) = sin r_p cos r_t - cos r_p sin r_t``
  (the two products compared), over positives, weight 2;
- ``dir``: softmax cross-entropy of the direction bin, over positives, weight 0.2.

Reference: zhulf0804/PointPillars ``model/anchors.py`` (``anchor_target``) and ``loss/loss.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from attnlab.errors import InputError
from attnlab.layers.rotated_boxes import aligned_iou, nearest_bev
from attnlab.models.outputs import PointPillarsOutput
from attnlab.models.pointpillars.box_coder import direction_target, encode

BEV = [0, 1, 3, 4, 6]  # x y w l ry of a (.., 7) box


@dataclass(frozen=True)
class PointPillarsLossConfig:
    pos_iou: tuple[float, ...] = (0.6, 0.5, 0.5)  # per class, in the model's class order
    neg_iou: tuple[float, ...] = (0.45, 0.35, 0.35)
    alpha: float = 0.25
    gamma: float = 2.0
    beta: float = 1.0 / 9.0  # smooth-L1's quadratic zone
    cls_weight: float = 1.0
    box_weight: float = 2.0
    dir_weight: float = 0.2


@dataclass
class AnchorTargets:
    """Targets of B scenes' A anchors."""

    labels: torch.Tensor  # (B, A) long: class of a positive, num_classes for a negative, -1 ignored
    boxes: torch.Tensor  # (B, A, 7) residuals to the matched box (zeros where not positive)
    directions: torch.Tensor  # (B, A) long: direction bin of the matched box


def assign_one(
    anchors: torch.Tensor,
    anchor_class: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    pos_iou: torch.Tensor,
    neg_iou: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One scene: (A,) label (class, ``len(pos_iou)`` for background, -1 ignored) and matched box index."""
    num_classes = len(pos_iou)
    a = len(anchors)
    if len(gt_boxes) == 0:
        return torch.full((a,), num_classes, dtype=torch.long, device=anchors.device), torch.zeros(
            a, dtype=torch.long, device=anchors.device
        )
    iou = aligned_iou(nearest_bev(anchors[:, BEV]), nearest_bev(gt_boxes[:, BEV]))  # (A, M)
    iou = torch.where(anchor_class[:, None] == gt_labels[None], iou, torch.full_like(iou, -1.0))
    best_iou, matched = iou.max(1)  # (A,)
    pos = best_iou >= pos_iou[anchor_class]
    neg = best_iou < neg_iou[anchor_class]
    gt_best = iou.max(0).values  # (M,)
    forced = (iou == gt_best[None]) & (gt_best[None] > 0)  # (A, M): each box's best anchors
    has_forced = forced.any(1)
    matched = torch.where(has_forced, forced.float().argmax(1), matched)
    pos |= has_forced
    labels = torch.full((a,), -1, dtype=torch.long, device=anchors.device)
    labels[neg] = num_classes
    labels[pos] = anchor_class[pos]
    return labels, matched


def assign_targets(
    anchors: torch.Tensor,
    anchor_class: torch.Tensor,
    gt_boxes: list[torch.Tensor],
    gt_labels: list[torch.Tensor],
    cfg: PointPillarsLossConfig,
) -> AnchorTargets:
    """Targets for B scenes from their (M_b, 7) LiDAR boxes and (M_b,) class indices."""
    num_classes = int(anchor_class.max()) + 1
    if len(cfg.pos_iou) != num_classes or len(cfg.neg_iou) != num_classes:
        raise InputError(
            f"the loss needs one positive and one negative IoU per class ({num_classes} classes)"
        )
    pos_iou = torch.tensor(cfg.pos_iou, device=anchors.device)
    neg_iou = torch.tensor(cfg.neg_iou, device=anchors.device)
    labels, boxes, dirs = [], [], []
    for gt, lab in zip(gt_boxes, gt_labels, strict=True):
        if gt.dim() != 2 or gt.shape[1] != 7 or lab.shape != gt.shape[:1]:
            raise InputError(
                f"ground truth must be (M, 7) boxes and (M,) labels, "
                f"got {tuple(gt.shape)}, {tuple(lab.shape)}"
            )
        label, matched = assign_one(anchors, anchor_class, gt, lab, pos_iou, neg_iou)
        if len(gt):
            target = gt[matched]  # (A, 7)
            boxes.append(
                torch.where(
                    (label >= 0)[:, None] & (label < num_classes)[:, None], encode(target, anchors), 0.0
                )
            )
            dirs.append(direction_target(target[:, 6]))
        else:
            boxes.append(torch.zeros_like(anchors))
            dirs.append(torch.zeros(len(anchors), dtype=torch.long, device=anchors.device))
        labels.append(label)
    return AnchorTargets(labels=torch.stack(labels), boxes=torch.stack(boxes), directions=torch.stack(dirs))


def sigmoid_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float, gamma: float
) -> torch.Tensor:
    """Element-wise focal loss (Lin et al. 2017, arXiv:1708.02002) of logits against 0/1 targets."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    return ce * (1 - p_t) ** gamma * (alpha * targets + (1 - alpha) * (1 - targets))


def sin_difference(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Residuals whose heading entries become ``sin r_p cos r_t`` and ``cos r_p sin r_t``."""
    p_r, t_r = pred[..., 6:7], target[..., 6:7]
    pred = torch.cat([pred[..., :6], torch.sin(p_r) * torch.cos(t_r)], -1)
    target = torch.cat([target[..., :6], torch.cos(p_r) * torch.sin(t_r)], -1)
    return pred, target


def pointpillars_terms(
    out: PointPillarsOutput, targets: AnchorTargets, cfg: PointPillarsLossConfig
) -> dict[str, torch.Tensor]:
    """Named, weighted terms ``cls``, ``box`` and ``dir`` (see the module docstring)."""
    num_classes = out.cls_logits.shape[-1]
    labels = targets.labels
    pos = (labels >= 0) & (labels < num_classes)  # (B, A)
    cared = labels >= 0
    num_pos = pos.sum().clamp(min=1).to(out.cls_logits.dtype)
    onehot = F.one_hot(labels.clamp(min=0), num_classes + 1)[..., :num_classes].to(out.cls_logits.dtype)
    focal = sigmoid_focal_loss(out.cls_logits, onehot, cfg.alpha, cfg.gamma)  # (B, A, K)
    cls = (focal * cared[..., None]).sum() / num_pos
    pred, target = sin_difference(out.box_deltas[pos], targets.boxes[pos])
    box = F.smooth_l1_loss(pred, target, beta=cfg.beta, reduction="sum") / num_pos
    direction = F.cross_entropy(out.dir_logits[pos], targets.directions[pos], reduction="sum") / num_pos
    return {
        "cls": cfg.cls_weight * cls,
        "box": cfg.box_weight * box,
        "dir": cfg.dir_weight * direction,
    }
