"""PointPillars' targets and losses against hand-placed boxes and float64 formulas written out."""

import math

import pytest
import torch

from attnlab.errors import InputError
from attnlab.models.outputs import PointPillarsOutput
from attnlab.models.pointpillars.box_coder import encode
from attnlab.objectives.pointpillars import (
    PointPillarsLossConfig,
    assign_targets,
    pointpillars_terms,
    sigmoid_focal_loss,
    sin_difference,
)

CFG = PointPillarsLossConfig()


def test_focal_loss_is_the_written_out_formula():
    x = torch.tensor([-3.0, -0.5, 0.0, 0.7, 2.5], dtype=torch.float64)
    t = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    got = sigmoid_focal_loss(x, t, alpha=0.25, gamma=2.0)
    expected = []
    for xi, ti in zip(x.tolist(), t.tolist(), strict=True):
        p = 1 / (1 + math.exp(-xi))
        # torchvision.ops.sigmoid_focal_loss: -alpha_t (1 - p_t)^gamma log p_t
        p_t, a_t = (p, 0.25) if ti == 1 else (1 - p, 0.75)
        expected.append(-a_t * (1 - p_t) ** 2 * math.log(p_t))
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=1e-14)


def test_sin_difference_compares_the_sine_of_the_heading_error():
    pred = torch.zeros(3, 7, dtype=torch.float64)
    target = torch.zeros(3, 7, dtype=torch.float64)
    pred[:, 6] = torch.tensor([0.3, 1.0, math.pi + 0.2], dtype=torch.float64)
    target[:, 6] = torch.tensor([0.1, 1.0, 0.2], dtype=torch.float64)
    p, t = sin_difference(pred, target)
    torch.testing.assert_close(p[:, 6] - t[:, 6], torch.sin(pred[:, 6] - target[:, 6]), rtol=0, atol=1e-12)
    assert abs(float(p[2, 6] - t[2, 6])) < 1e-12  # a heading off by pi costs nothing: the direction bin's job


# Four anchors of a 3-class, 1-rotation model: two cars, one pedestrian, one cyclist anchor.
ANCHORS = torch.tensor([
    [10.0, 0.0, -1.75, 1.6, 3.9, 1.5, 0.0],      # car at the car
    [10.0, 3.0, -1.75, 1.6, 3.9, 1.5, 0.0],      # car anchor 3 m beside the first
    [20.0, 0.0, -1.465, 0.6, 0.8, 1.73, 0.0],    # pedestrian anchor
    [20.0, 5.0, -1.465, 0.6, 1.76, 1.73, 0.0],   # cyclist anchor, nothing near it
])  # fmt: skip
ANCHOR_CLASS = torch.tensor([0, 0, 1, 2])


def test_assignment_on_hand_placed_boxes():
    car = [
        10.2,
        0.0,
        -1.7,
        1.6,
        3.9,
        1.5,
        0.05,
    ]  # IoU with anchor 0: (3.9 * 1.4) / (2 * 3.9 * 1.6 - 3.9 * 1.4) = 0.778
    ped = [
        20.3,
        0.0,
        -1.7,
        0.6,
        0.8,
        1.7,
        0.0,
    ]  # IoU with anchor 2: 0.3 * 0.8 / (2 * 0.48 - 0.24) = 1/3 < 0.35
    boxes = torch.tensor([car, ped])
    labels = torch.tensor([0, 1])
    t = assign_targets(ANCHORS, ANCHOR_CLASS, [boxes], [labels], CFG)
    # anchor 0: positive car (0.778 >= 0.6); anchor 1: 1.4 * 0.9 / (12.48 - 1.26) = 0.112 < 0.45 -> negative;
    # anchor 2: 1/3 is below the pedestrian's 0.35 but it is the pedestrian's best anchor -> positive;
    # anchor 3: no cyclist -> negative (label 3 = background)
    assert t.labels[0].tolist() == [0, 3, 1, 3]
    torch.testing.assert_close(t.boxes[0, 0], encode(boxes[0], ANCHORS[0]))
    torch.testing.assert_close(t.boxes[0, 2], encode(boxes[1], ANCHORS[2]))
    assert t.directions[0].tolist()[0] == 0 and t.directions[0].tolist()[2] == 0


def test_between_thresholds_is_ignored_and_no_box_means_all_negative():
    car = [10.0, 1.2, -1.75, 1.6, 3.9, 1.5, 0.0]  # IoU 4.32 / 8.16 = 0.529 with anchor 0
    t = assign_targets(ANCHORS, ANCHOR_CLASS, [torch.tensor([car]), torch.zeros(0, 7)],
                       [torch.tensor([0]), torch.zeros(0, dtype=torch.long)], CFG)  # fmt: skip
    # anchor 0: 0.529 (the box's best anchor) -> positive; anchor 1: 3.36 / (12.48 - 3.36) = 0.368 -> negative
    assert t.labels[0].tolist() == [0, 3, 3, 3]
    car_between = [10.0, 0.9, -1.75, 1.6, 3.9, 1.5, 0.0]  # anchor 0: 4.8 / 7.68 = 0.625 >= 0.6
    at_anchor_1 = [10.0, 3.0, -1.75, 1.6, 3.9, 1.5, 0.0]
    t2 = assign_targets(ANCHORS, ANCHOR_CLASS, [torch.tensor([car_between, at_anchor_1])],
                        [torch.tensor([0, 0])], CFG)  # fmt: skip
    assert t2.labels[0].tolist()[:2] == [0, 0]
    assert t.labels[1].tolist() == [3, 3, 3, 3]


def test_ignored_anchor_between_thresholds():
    cfg = PointPillarsLossConfig(pos_iou=(0.6, 0.5, 0.5), neg_iou=(0.45, 0.35, 0.35))
    car = [10.0, 1.3, -1.75, 1.6, 3.9, 1.5, 0.0]  # anchor 0: 4.16 / 8.32 = 0.5; anchor 1: 3.52 / 8.96 = 0.393
    exact = [10.0, 0.0, -1.75, 1.6, 3.9, 1.5, 0.0]  # takes anchor 0 as its best
    t = assign_targets(ANCHORS, ANCHOR_CLASS, [torch.tensor([exact, car])], [torch.tensor([0, 0])], cfg)
    # anchor 0: the exact car (IoU 1) -> positive, and the best anchor of the second car too; anchor 1: 0.393,
    # below 0.45 -> negative. Moved to y = 1.1 the car makes anchor 1 0.449 -> negative, at 0.9 -> 0.368.
    assert t.labels[0].tolist() == [0, 3, 3, 3]
    near = [
        10.0,
        2.0,
        -1.75,
        1.6,
        3.9,
        1.5,
        0.0,
    ]  # anchor 0: 1.9 * 1.6 / (12.48 - 3.04) = 0.322; anchor 1: 0.589
    t2 = assign_targets(ANCHORS, ANCHOR_CLASS, [torch.tensor([exact, near])], [torch.tensor([0, 0])], cfg)
    # anchor 1: 0.589 is between 0.45 and 0.6, but it is that car's best anchor -> positive
    assert t2.labels[0].tolist() == [0, 0, 3, 3]
    loose = PointPillarsLossConfig(pos_iou=(0.6, 0.5, 0.5), neg_iou=(0.3, 0.35, 0.35))
    t3 = assign_targets(
        ANCHORS, ANCHOR_CLASS, [torch.tensor([exact, exact, car])], [torch.tensor([0, 0, 0])], loose
    )
    # anchor 1: 0.393 with the third car, between 0.3 and 0.6 and not any car's best -> ignored (-1)
    assert t3.labels[0].tolist() == [0, -1, 3, 3]


def test_terms_by_hand():
    a = len(ANCHORS)
    cls_logits = torch.zeros(1, a, 3, dtype=torch.float64)
    deltas = torch.zeros(1, a, 7, dtype=torch.float64)
    dir_logits = torch.zeros(1, a, 2, dtype=torch.float64)
    out = PointPillarsOutput(cls_logits, deltas, dir_logits, ANCHORS.double(), torch.zeros(1, 1, 1, 1), None)
    car = torch.tensor([[10.0, 0.0, -1.75, 1.6, 3.9, 1.5, 0.0]])
    t = assign_targets(ANCHORS, ANCHOR_CLASS, [car], [torch.tensor([0])], CFG)
    assert t.labels[0].tolist() == [0, 3, 3, 3]
    terms = pointpillars_terms(out, t, CFG)
    # logits 0: p = 1/2; 12 binary targets, one positive:
    # 0.25 * 0.25 * log 2 + 11 * 0.75 * 0.25 * log 2, over 1 positive
    assert float(terms["cls"]) == pytest.approx((0.0625 + 11 * 0.1875) * math.log(2), rel=1e-12)
    assert float(terms["box"]) == pytest.approx(0.0, abs=1e-12)  # the box is the anchor
    assert float(terms["dir"]) == pytest.approx(0.2 * math.log(2), rel=1e-12)
    deltas[0, 0, 0] = 1.0  # smooth-L1 with beta 1/9: 1 - 1/18, weight 2
    assert float(pointpillars_terms(out, t, CFG)["box"]) == pytest.approx(2 * (1 - 1 / 18), rel=1e-12)


def test_bad_targets_are_one_line_errors():
    with pytest.raises(InputError, match=r"ground truth must be \(M, 7\) boxes"):
        assign_targets(ANCHORS, ANCHOR_CLASS, [torch.zeros(2, 5)], [torch.zeros(2, dtype=torch.long)], CFG)
    with pytest.raises(InputError, match="one positive and one negative IoU per class"):
        assign_targets(ANCHORS, ANCHOR_CLASS, [torch.zeros(0, 7)], [torch.zeros(0, dtype=torch.long)],
                       PointPillarsLossConfig(pos_iou=(0.6,)))  # fmt: skip
