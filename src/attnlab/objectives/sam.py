"""SAM's mask losses (Kirillov et al. 2023, arXiv:2304.02643, appendix A "Losses"): a linear
combination of focal loss and dice loss in 20:1, plus the mean squared error between the IoU
head's prediction and the IoU of the predicted mask with the ground truth (weight 1).

Focal loss (Lin et al. 2017) per pixel with alpha 0.25 and gamma 2 as DETR's ``sigmoid_focal_loss``
(which SAM's description follows), averaged over the pixels of a mask; dice loss
``1 - (2 sum(p t) + 1) / (sum p + sum t + 1)`` on the sigmoid probabilities, per mask. With
several outputs per prompt (``multimask_output``) only the output with the lowest mask loss is
trained, as SAM does for ambiguous prompts; the IoU term trains every output's prediction.

Targets are binary masks at the logits' resolution (callers resize the ground truth to 4h x 4w, or
upsample the logits with :meth:`attnlab.models.sam.sam.Sam.postprocess`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attnlab.errors import InputError

FOCAL_WEIGHT, DICE_WEIGHT, IOU_WEIGHT = 20.0, 1.0, 1.0


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0):
    """(..., H, W) logits and {0, 1} targets -> (...) focal loss averaged over the pixels."""
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.flatten(-2).mean(-1)


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(..., H, W) -> (...) ``1 - (2 sum(p t) + 1) / (sum p + sum t + 1)``."""
    p = logits.sigmoid().flatten(-2)
    t = targets.flatten(-2)
    return 1 - (2 * (p * t).sum(-1) + 1) / (p.sum(-1) + t.sum(-1) + 1)


def mask_iou(logits: torch.Tensor, targets: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """(..., H, W) -> (...) IoU of ``logits > threshold`` with the targets (1 where both are empty)."""
    pred = (logits > threshold).flatten(-2)
    t = targets.flatten(-2) > 0.5
    inter = (pred & t).sum(-1).float()
    union = (pred | t).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def sam_terms(
    masks: torch.Tensor,
    iou_predictions: torch.Tensor,
    targets: torch.Tensor,
    *,
    focal_weight: float = FOCAL_WEIGHT,
    dice_weight: float = DICE_WEIGHT,
    iou_weight: float = IOU_WEIGHT,
) -> dict[str, torch.Tensor]:
    """Weighted terms ``focal``, ``dice``, ``iou`` for logits (N, M, H, W), IoU predictions (N, M) and
    binary targets (N, H, W); the mask terms take, per prompt, the output with the lowest
    ``focal_weight * focal + dice_weight * dice``."""
    if masks.dim() != 4 or targets.shape != (masks.shape[0], *masks.shape[2:]):
        raise InputError(
            f"targets must be (N, H, W) = ({masks.shape[0]}, {', '.join(map(str, masks.shape[2:]))}) "
            f"for masks {tuple(masks.shape)}, got {tuple(targets.shape)}"
        )
    if iou_predictions.shape != masks.shape[:2]:
        raise InputError(
            f"iou_predictions must be {tuple(masks.shape[:2])}, got {tuple(iou_predictions.shape)}"
        )
    t = targets.to(masks.dtype)[:, None].expand_as(masks)  # (N, M, H, W)
    focal, dice = sigmoid_focal_loss(masks, t), dice_loss(masks, t)  # (N, M) each
    best = (focal_weight * focal + dice_weight * dice).argmin(dim=1, keepdim=True)  # (N, 1)
    with torch.no_grad():
        actual = mask_iou(masks, t)  # (N, M)
    return {
        "focal": focal_weight * focal.gather(1, best).mean(),
        "dice": dice_weight * dice.gather(1, best).mean(),
        "iou": iou_weight * F.mse_loss(iou_predictions, actual),
    }
