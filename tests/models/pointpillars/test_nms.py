"""Rotated NMS against a brute-force Python loop over the evaluation's float64 IoU."""

import math

import torch

from attnlab.metrics import rotated_iou as reference
from attnlab.models.pointpillars.nms import rotated_nms
from tests.models.pointpillars.test_rotated_boxes import to_camera_bev


def brute_force(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> list[int]:
    order = sorted(range(len(boxes)), key=lambda i: (-float(scores[i]), i))
    iou = reference.bev_iou(to_camera_bev(boxes), to_camera_bev(boxes))
    kept: list[int] = []
    for i in order:
        if all(iou[i, j] <= threshold for j in kept):
            kept.append(i)
    return kept


def test_matches_a_brute_force_loop():
    gen = torch.Generator().manual_seed(1)
    for threshold in (0.01, 0.3, 0.7):
        boxes = torch.cat([torch.rand(30, 2, generator=gen) * 8, 0.5 + torch.rand(30, 2, generator=gen) * 3,
                           torch.rand(30, 1, generator=gen) * 2 * math.pi], 1)  # fmt: skip
        boxes = torch.cat([boxes, boxes + 0.1 * torch.randn(30, 5, generator=gen)])  # near-duplicates too
        scores = torch.rand(60, generator=gen)
        kept = rotated_nms(boxes, scores, threshold).tolist()
        assert kept == brute_force(boxes, scores, threshold)
        assert 1 < len(kept) < 60


def test_empty_input():
    assert rotated_nms(torch.zeros(0, 5), torch.zeros(0), 0.5).tolist() == []
