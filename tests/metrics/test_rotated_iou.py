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


def _clip_area(subject: list[tuple[float, float]], clip: list[tuple[float, float]]) -> float:
    """Sutherland-Hodgman clipping of one convex polygon by another, then the shoelace area."""

    def left(p, a, b):
        return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= 0

    def cross_point(p, q, a, b):
        dx, dy = q[0] - p[0], q[1] - p[1]
        ex, ey = b[0] - a[0], b[1] - a[1]
        t = (ex * (p[1] - a[1]) - ey * (p[0] - a[0])) / (dx * ey - dy * ex)
        return (p[0] + t * dx, p[1] + t * dy)

    out = subject
    for i in range(len(clip)):
        a, b = clip[i], clip[(i + 1) % len(clip)]
        pts, out = out, []
        for j in range(len(pts)):
            p, q = pts[j], pts[(j + 1) % len(pts)]
            if left(q, a, b):
                if not left(p, a, b):
                    out.append(cross_point(p, q, a, b))
                out.append(q)
            elif left(p, a, b):
                out.append(cross_point(p, q, a, b))
        if not out:
            return 0.0
    return 0.5 * abs(
        sum(
            out[k][0] * out[(k + 1) % len(out)][1] - out[(k + 1) % len(out)][0] * out[k][1]
            for k in range(len(out))
        )
    )


def test_bev_iou_equals_polygon_clipping_on_random_boxes():
    rng = np.random.default_rng(0)
    a = np.column_stack(
        [rng.uniform(-2, 2, (300, 2)), rng.uniform(0.3, 4, (300, 2)), rng.uniform(-4, 4, 300)]
    )
    b = np.column_stack(
        [rng.uniform(-2, 2, (300, 2)), rng.uniform(0.3, 4, (300, 2)), rng.uniform(-4, 4, 300)]
    )
    ours = bev_iou(a, b).diagonal()
    ca, cb = bev_corners(a), bev_corners(b)
    for i in range(len(a)):
        inter = _clip_area([tuple(p) for p in ca[i]], [tuple(p) for p in cb[i]])
        union = a[i, 2] * a[i, 3] + b[i, 2] * b[i, 3] - inter
        assert ours[i] == pytest.approx(inter / union, abs=1e-9), i
    assert (ours > 0).mean() > 0.5  # most pairs overlap: the test exercises the geometry


def test_a_box_inside_another():
    outer = np.array([[0.0, 0.0, 4.0, 4.0, 0.3]])
    inner = np.array([[0.2, -0.1, 1.0, 0.5, 1.1]])
    np.testing.assert_allclose(bev_iou(outer, inner), [[0.5 / 16]], atol=1e-12)
