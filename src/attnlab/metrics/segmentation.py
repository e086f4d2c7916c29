"""Unsupervised object segmentation metrics: FG-ARI and Hungarian-matched mIoU.

FG-ARI is the adjusted Rand index (Hubert & Arabie 1985) between the predicted and the true
partition of an image's pixels, counting only the pixels that are not background in the truth,
as MONet (arXiv:1901.11390), IODINE (arXiv:1903.00450) and Slot Attention (arXiv:2006.15055)
evaluate it. mIoU matches predicted slots to true objects one-to-one with the Hungarian
algorithm (maximum total IoU) and averages the IoU over the true objects.

Inputs, batched over any leading dimensions (typically (B, T) for video or (B,) for images):

- ``pred_masks`` (..., K, H, W): soft slot masks (floating) or hard ones (bool). Each pixel is
  assigned to its argmax slot (the first slot on ties); a bool mask is read the same way, so a
  pixel claimed by several slots goes to the first of them and one claimed by none to slot 0.
- ``true_labels`` (..., H, W): an integer object id per pixel; ``background`` (default 0) is
  the id of the background, or None when every id is an object.

Outputs: a float64 CPU tensor (...) with one value per image. Conventions:

- an image without foreground pixels has no FG-ARI and an image without true objects has no
  mIoU: both give NaN, so average with ``torch.nanmean``;
- when the foreground pixels leave the ARI undefined (0/0: both partitions put every pixel in
  one group, or every pixel in its own group, which includes a single pixel), the partitions
  are identical and the ARI is 1, as in ``sklearn.metrics.adjusted_rand_score``;
- with fewer predicted slots than true objects, the unmatched objects count as IoU 0; extra
  slots are not penalised. The background counts as an object for mIoU only when
  ``background`` is None.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from attnlab.errors import InputError


def fg_ari(
    pred_masks: torch.Tensor, true_labels: torch.Tensor, *, background: int | None = 0
) -> torch.Tensor:
    """Foreground adjusted Rand index per image (...), in [-1, 1]; see the module docstring."""
    table, labels = contingency_table(pred_masks, true_labels)
    if background is not None:
        table[..., labels == background] = 0  # background pixels take no part
    return _ari_from_table(table.to(torch.float64)).reshape(true_labels.shape[:-2])


def hungarian_miou(
    pred_masks: torch.Tensor, true_labels: torch.Tensor, *, background: int | None = 0
) -> torch.Tensor:
    """Mean IoU of the true objects under the best one-to-one slot assignment, per image (...)."""
    table, labels = contingency_table(pred_masks, true_labels)
    is_object = labels != background if background is not None else torch.ones_like(labels, dtype=torch.bool)
    counts = table.to(torch.float64).numpy()
    values = [_matched_iou(image, is_object.numpy()) for image in counts]
    return torch.tensor(values, dtype=torch.float64).reshape(true_labels.shape[:-2])


def contingency_table(
    pred_masks: torch.Tensor, true_labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel counts (M, K, L) of argmax slot k against true id ``labels[l]`` for each of the M
    images (leading dimensions flattened), and the sorted true ids ``labels`` (L,)."""
    _check_inputs(pred_masks, true_labels)
    pred_ids = _argmax_slots(pred_masks.detach().cpu())  # (..., H, W)
    labels, true_ids = _dense_ids(true_labels.detach().cpu())
    num_slots, num_labels = pred_masks.shape[-3], len(labels)
    cells = (pred_ids * num_labels + true_ids).reshape(-1, pred_ids.shape[-2] * pred_ids.shape[-1])
    table = torch.zeros(cells.shape[0], num_slots * num_labels, dtype=torch.int64)
    table.scatter_add_(1, cells, torch.ones_like(cells))
    return table.reshape(-1, num_slots, num_labels), labels


def _argmax_slots(masks: torch.Tensor) -> torch.Tensor:
    # max(dim).indices is argmax with the first slot winning ties, several times faster on CPU;
    # max is not implemented for bool, and uint8 keeps the first-True-slot reading.
    return (masks.to(torch.uint8) if masks.dtype == torch.bool else masks).max(dim=-3).indices


def _dense_ids(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The sorted distinct ids and each pixel's rank among them, like torch.unique."""
    low, high = int(labels.min()), int(labels.max())
    if high - low + 1 > labels.numel():  # sparse ids: sorting is cheaper than a huge count
        return torch.unique(labels, return_inverse=True)
    # Counting over the id range is linear in pixels, several times faster than sorting.
    shifted = (labels - low).long()
    present = torch.bincount(shifted.flatten(), minlength=high - low + 1) > 0
    rank = present.cumsum(0) - 1
    return torch.nonzero(present).flatten() + low, rank[shifted]


def _pairs(counts: torch.Tensor) -> torch.Tensor:
    return counts * (counts - 1) / 2


def _ari_from_table(table: torch.Tensor) -> torch.Tensor:
    num_pixels = table.sum((1, 2))
    all_pairs = _pairs(num_pixels)
    pairs_together = _pairs(table).sum((1, 2))
    pred_pairs = _pairs(table.sum(2)).sum(1)
    true_pairs = _pairs(table.sum(1)).sum(1)
    expected = pred_pairs * true_pairs / all_pairs.clamp(min=1)
    maximum = (pred_pairs + true_pairs) / 2
    ari = (pairs_together - expected) / (maximum - expected)
    # The denominator is 0 exactly when both partitions are one group, or all singletons; the
    # partitions are then identical. Tested on the integer pair counts, free of rounding.
    identical = (pred_pairs == true_pairs) & ((pred_pairs == all_pairs) | (pred_pairs == 0))
    ari = torch.where(identical, torch.ones_like(ari), ari)
    return torch.where(num_pixels == 0, torch.full_like(ari, float("nan")), ari)


def _matched_iou(table: np.ndarray, is_object: np.ndarray) -> float:
    present = is_object & (table.sum(0) > 0)
    if not present.any():
        return float("nan")
    inter = table[:, present]  # (K, objects)
    union = table.sum(1)[:, None] + inter.sum(0)[None, :] - inter
    iou = inter / union  # union >= the object's area > 0
    rows, cols = linear_sum_assignment(iou, maximize=True)
    return float(iou[rows, cols].sum() / present.sum())


def _check_inputs(pred_masks: torch.Tensor, true_labels: torch.Tensor) -> None:
    if not isinstance(pred_masks, torch.Tensor) or not isinstance(true_labels, torch.Tensor):
        raise InputError("pred_masks and true_labels must be torch tensors")
    if pred_masks.ndim < 3 or pred_masks.numel() == 0:
        raise InputError(
            f"pred_masks must be a non-empty (..., K, H, W) tensor, got {tuple(pred_masks.shape)}"
        )
    if pred_masks.dtype != torch.bool and not pred_masks.is_floating_point():
        raise InputError(f"pred_masks must be floating (soft) or bool (hard), got {pred_masks.dtype}")
    # NaN propagates through amax, inf shows in amax/amin: cheaper than isfinite on every value.
    if (
        pred_masks.is_floating_point()
        and not torch.isfinite(torch.stack([pred_masks.amax(), pred_masks.amin()])).all()
    ):
        raise InputError("pred_masks contain NaN or inf")
    if true_labels.is_floating_point() or true_labels.is_complex() or true_labels.dtype == torch.bool:
        raise InputError(f"true_labels must be an integer tensor of object ids, got {true_labels.dtype}")
    expected = (*pred_masks.shape[:-3], *pred_masks.shape[-2:])
    if tuple(true_labels.shape) != expected:
        raise InputError(
            f"true_labels must have shape {expected} to match pred_masks "
            f"{tuple(pred_masks.shape)}, got {tuple(true_labels.shape)}"
        )
