"""Box overlaps against hand-computed values."""

import math

import numpy as np
import pytest

from attnlab.errors import InputError
from attnlab.metrics.rotated_iou import bev_corners, bev_iou, box2d_iou, box3d_iou


def test_box2d_iou_and_area_of_the_first_box():
    a = np.array([[0.0, 0.0, 4.0, 2.0]])
    b = np.array([[1.0, 0.0, 5.0, 2.0], [4.0, 0.0, 6.0, 2.0], [2.0, 1.0, 3.0, 5.0]])
    # Overlaps 3*2 of union 10; touching edges only; 1*1 of union 8 + 4 - 1.
    np.testing.assert_allclose(box2d_iou(a, b), [[0.6, 0.0, 1 / 11]])
    # criterion 0 divides by the first box's area (8).
    np.testing.assert_allclose(box2d_iou(a, b, criterion=0), [[6 / 8, 0.0, 1 / 8]])
    with pytest.raises(InputError, match="criterion"):
        box2d_iou(a, b, criterion=1)


def test_bev_corners_follow_kittis_heading():
    # Length 4 along (cos ry, -sin ry): at ry = pi/2 the box's long axis is the z axis.
    corners = bev_corners(np.array([[0.0, 0.0, 4.0, 2.0, math.pi / 2]]))[0]
    np.testing.assert_allclose(np.sort(np.abs(corners[:, 1])), [2, 2, 2, 2], atol=1e-12)
    np.testing.assert_allclose(np.sort(np.abs(corners[:, 0])), [1, 1, 1, 1], atol=1e-12)


def test_bev_iou_of_hand_placed_boxes():
    square = [0.0, 0.0, 1.0, 1.0, 0.0]
    diamond = [0.0, 0.0, 1.0, 1.0, math.pi / 4]  # the same square turned 45 degrees: an octagon
    octagon = 2 * (math.sqrt(2) - 1)
    shifted = [0.5, 0.0, 1.0, 1.0, 0.0]  # half overlapping: 0.5 / 1.5
    flipped = [0.0, 0.0, 1.0, 1.0, math.pi]  # heading flipped: the same footprint
    far = [3.0, 3.0, 1.0, 1.0, 0.3]
    ious = bev_iou(np.array([square]), np.array([diamond, shifted, flipped, far]))
    np.testing.assert_allclose(ious, [[octagon / (2 - octagon), 1 / 3, 1.0, 0.0]], atol=1e-12)


def test_bev_iou_of_a_long_box_across_a_turned_one():
    # A 4 x 1 box along x and the same box turned 90 degrees: a 1 x 1 cross in the middle.
    a = np.array([[0.0, 0.0, 4.0, 1.0, 0.0]])
    b = np.array([[0.0, 0.0, 4.0, 1.0, math.pi / 2]])
    np.testing.assert_allclose(bev_iou(a, b), [[1 / 7]], atol=1e-12)


def test_box3d_iou_multiplies_the_bev_overlap_by_the_vertical_one():
    # (x, y, z, l, h, w, ry); y is the bottom, the box spans [y - h, y].
    a = np.array([[0.0, 2.0, 0.0, 2.0, 2.0, 2.0, 0.0]])
    b = np.array([[1.0, 3.0, 0.0, 2.0, 2.0, 2.0, 0.0], [0.0, 6.0, 0.0, 2.0, 2.0, 2.0, 0.0]])
    # Overlap 1 (x) * 1 (height) * 2 (z) = 2 of union 8 + 8 - 2; the second is stacked below.
    np.testing.assert_allclose(box3d_iou(a, b), [[2 / 14, 0.0]], atol=1e-12)
