"""SAM's focal + dice + IoU terms against the formulas written out in float64 here."""

import math

import pytest
import torch

from attnlab.errors import InputError
from attnlab.objectives.sam import dice_loss, mask_iou, sam_terms, sigmoid_focal_loss


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def focal_by_hand(logits: list[float], targets: list[float]) -> float:
    total = 0.0
    for x, t in zip(logits, targets, strict=True):
        p = sig(x)
        total += -0.25 * (1 - p) ** 2 * math.log(p) if t else -0.75 * p**2 * math.log(1 - p)
    return total / len(logits)


def dice_by_hand(logits: list[float], targets: list[float]) -> float:
    p = [sig(x) for x in logits]
    inter = sum(a * b for a, b in zip(p, targets, strict=True))
    return 1 - (2 * inter + 1) / (sum(p) + sum(targets) + 1)


def test_focal_and_dice_by_hand():
    x, t = [0.0, 2.0, -1.0, 3.0], [1.0, 0.0, 0.0, 1.0]
    logits = torch.tensor(x, dtype=torch.float64).view(1, 2, 2)
    targets = torch.tensor(t, dtype=torch.float64).view(1, 2, 2)
    assert sigmoid_focal_loss(logits, targets).item() == pytest.approx(focal_by_hand(x, t), rel=1e-12)
    assert dice_loss(logits, targets).item() == pytest.approx(dice_by_hand(x, t), rel=1e-12)
    assert mask_iou(logits, targets).item() == pytest.approx(1 / 3)  # pred {1, 3} (logits > 0), target {0, 3}


def test_terms_train_the_best_output_and_every_iou_prediction():
    targets = torch.zeros(1, 4, 4)
    targets[0, :2] = 1
    good = torch.where(targets[0] > 0, 5.0, -5.0)
    bad = -good
    masks = torch.stack([bad, good])[None].double()  # (1, 2, 4, 4): output 1 is right
    iou_pred = torch.tensor([[0.3, 0.6]], dtype=torch.float64)
    terms = sam_terms(masks, iou_pred, targets.double())
    flat_t = targets.flatten().tolist()
    assert terms["focal"].item() == pytest.approx(
        20 * focal_by_hand(good.flatten().tolist(), flat_t), rel=1e-9
    )
    assert terms["dice"].item() == pytest.approx(dice_by_hand(good.flatten().tolist(), flat_t), rel=1e-9)
    assert terms["iou"].item() == pytest.approx(((0.3 - 0.0) ** 2 + (0.6 - 1.0) ** 2) / 2, rel=1e-9)


def test_targets_of_the_wrong_shape_are_one_line():
    with pytest.raises(InputError, match=r"targets must be \(N, H, W\) = \(2, 8, 8\)"):
        sam_terms(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1), torch.zeros(2, 16, 16))
