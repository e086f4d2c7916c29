"""The torch rotated BEV geometry against the evaluation's float64 numpy version and hand values."""

import math

import numpy as np
import pytest
import torch

from attnlab.errors import InputError
from attnlab.layers.rotated_boxes import aligned_iou, bev_box_corners, bev_iou, nearest_bev
from attnlab.metrics import rotated_iou as reference


def to_camera_bev(boxes: torch.Tensor) -> np.ndarray:
    """LiDAR BEV (x, y, w, l, ry) -> the evaluation's camera BEV (x, z, l, w, ry): x_c = -y, z_c = x."""
    b = boxes.double().numpy()
    return np.stack([-b[:, 1], b[:, 0], b[:, 3], b[:, 2], b[:, 4]], 1)


def test_corners_follow_the_readers_lidar_convention():
    from attnlab.data.kitti import lidar_box_corners

    box = torch.tensor([[1.0, 2.0, 0.0, 1.5, 4.0, 1.6, 0.7]], dtype=torch.float64)
    ours = bev_box_corners(box[:, [0, 1, 3, 4, 6]])[0].numpy()
    theirs = lidar_box_corners(box.numpy())[0, :, :2]  # (8, 2): bottom and top share the footprint
    assert {tuple(np.round(c, 9)) for c in ours} == {tuple(np.round(c, 9)) for c in theirs}


def test_hand_values():
    square = torch.tensor([[0.0, 0.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    turned = torch.tensor([[0.0, 0.0, 1.0, 1.0, math.pi / 4]], dtype=torch.float64)
    octagon = 2 * (math.sqrt(2) - 1)
    assert bev_iou(square, turned).item() == pytest.approx(octagon / (2 - octagon), abs=1e-12)
    cross_a = torch.tensor([[0.0, 0.0, 4.0, 1.0, 0.0]], dtype=torch.float64)
    cross_b = torch.tensor([[0.0, 0.0, 4.0, 1.0, math.pi / 2]], dtype=torch.float64)
    assert bev_iou(cross_a, cross_b).item() == pytest.approx(1 / 7, abs=1e-12)
    shifted = torch.tensor([[0.5, 0.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    assert bev_iou(square, shifted).item() == pytest.approx(1 / 3, abs=1e-12)
    flipped = torch.tensor([[0.0, 0.0, 1.0, 1.0, math.pi]], dtype=torch.float64)
    assert bev_iou(square, flipped).item() == pytest.approx(1.0, abs=1e-9)
    far = torch.tensor([[5.0, 0.0, 1.0, 1.0, 0.3]], dtype=torch.float64)
    assert bev_iou(square, far).item() == 0.0


def test_random_pairs_match_the_evaluation_in_the_camera_frame():
    """Both share ``quad_intersection``; this checks the two frames' corners and sizes agree (the
    geometry itself is checked against Sutherland-Hodgman clipping in tests/metrics)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.cat([torch.rand(40, 2, generator=gen) * 4, 0.5 + 3 * torch.rand(40, 2, generator=gen),
                   (torch.rand(40, 1, generator=gen) - 0.5) * 4 * math.pi], 1).double()  # fmt: skip
    b = torch.cat([torch.rand(30, 2, generator=gen) * 4, 0.5 + 3 * torch.rand(30, 2, generator=gen),
                   (torch.rand(30, 1, generator=gen) - 0.5) * 4 * math.pi], 1).double()  # fmt: skip
    ours = bev_iou(a, b).numpy()
    theirs = reference.bev_iou(to_camera_bev(a), to_camera_bev(b))
    assert (theirs > 0).sum() > 100  # the pairs overlap in many ways
    np.testing.assert_allclose(ours, theirs, atol=1e-9)


def test_nearest_bev_swaps_sizes_past_45_degrees_and_aligned_iou_by_hand():
    boxes = torch.tensor([[0.0, 0.0, 2.0, 4.0, 0.1], [0.0, 0.0, 2.0, 4.0, 1.5], [1.0, 1.0, 2.0, 4.0, -3.0]])
    np.testing.assert_allclose(
        nearest_bev(boxes).numpy(), [[-1, -2, 1, 2], [-2, -1, 2, 1], [0, -1, 2, 3]], atol=1e-6
    )
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 0.0, 4.0, 2.0]])
    np.testing.assert_allclose(aligned_iou(a, b).numpy(), [[1 / 7, 0.0]], atol=1e-7)


def test_bad_shapes_are_one_line_errors():
    with pytest.raises(InputError, match=r"must be \(N, 5\) BEV boxes"):
        bev_iou(torch.zeros(3, 7), torch.zeros(2, 5))
