"""Rotated bird's-eye-view boxes in torch: corners, exact rotated IoU, axis-aligned "nearest" IoU.

Boxes are LiDAR-frame BEV boxes ``(x, y, w, l, ry)`` in the convention of
:func:`attnlab.data.kitti.lidar_box_corners` (PointPillars' ``bbox3d2corners``): at ``ry = 0``
the width runs along x and the length along y, and the box is turned by ``-ry`` about z.

The rotated intersection is exact geometry (no compiled kernel): the intersection of two convex
quadrilaterals is the convex hull of the corners of each inside the other and the crossings of
their edges (at most 24 candidates), sorted by angle about their mean, area by the shoelace sum
(:func:`quad_intersection`, batched over any leading dimensions, any device). The detector's
NMS uses it on LiDAR boxes; the KITTI evaluation (:mod:`attnlab.metrics.rotated_iou`) on its
camera-frame corners in float64.
"""

from __future__ import annotations

import torch

from attnlab.errors import InputError

_INSIDE_EPS = 1e-6  # corners this close to an edge count as inside (shared corners of equal boxes)


def _check(boxes: torch.Tensor, name: str) -> None:
    if boxes.dim() != 2 or boxes.shape[1] != 5:
        raise InputError(f"{name} must be (N, 5) BEV boxes (x, y, w, l, ry), got shape {tuple(boxes.shape)}")


def bev_box_corners(boxes: torch.Tensor) -> torch.Tensor:
    """(N, 5) boxes ``(x, y, w, l, ry)`` -> (N, 4, 2) corners, counter-clockwise."""
    _check(boxes, "boxes")
    hw, hl = boxes[:, 2] / 2, boxes[:, 3] / 2
    lx = torch.stack([-hw, hw, hw, -hw], 1)  # (N, 4)
    ly = torch.stack([-hl, -hl, hl, hl], 1)
    cos, sin = boxes[:, 4].cos()[:, None], boxes[:, 4].sin()[:, None]
    x = lx * cos + ly * sin + boxes[:, 0:1]  # a turn by -ry: still counter-clockwise
    y = -lx * sin + ly * cos + boxes[:, 1:2]
    return torch.stack([x, y], -1)


def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _inside(points: torch.Tensor, quads: torch.Tensor) -> torch.Tensor:
    """(..., P, 2) points in (..., 4, 2) counter-clockwise quads -> (..., P) bool."""
    edges = quads.roll(-1, -2) - quads  # (..., 4, 2)
    rel = points[..., :, None, :] - quads[..., None, :, :]  # (..., P, 4, 2)
    scale = edges.norm(dim=-1).clamp(min=1e-12)[..., None, :]
    return (_cross(edges[..., None, :, :], rel) / scale >= -_INSIDE_EPS).all(-1)


def _crossings(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge crossings of (..., 4, 2) quads a and b -> points (..., 16, 2) and valid (..., 16)."""
    pa, da = a[..., :, None, :], (a.roll(-1, -2) - a)[..., :, None, :]  # (N, K, 4, 1, 2)
    pb, db = b[..., None, :, :], (b.roll(-1, -2) - b)[..., None, :, :]  # (N, K, 1, 4, 2)
    denom = _cross(da, db)  # (N, K, 4, 4)
    diff = pb - pa
    safe = torch.where(denom.abs() > 1e-12, denom, torch.ones_like(denom))
    t, u = _cross(diff, db) / safe, _cross(diff, da) / safe
    valid = (denom.abs() > 1e-12) & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1)
    points = pa + t[..., None] * da  # (N, K, 4, 4, 2)
    lead = a.shape[:-2]
    return points.reshape(*lead, 16, 2), valid.reshape(*lead, 16)


def _hull_area(points: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Area of the convex polygon through the ``valid`` points of each (..., V, 2) set."""
    count = valid.sum(-1, keepdim=True).clamp(min=1)
    centre = (points * valid[..., None]).sum(-2) / count  # (..., 2)
    rel = points - centre[..., None, :]
    angle = torch.atan2(rel[..., 1], rel[..., 0]).masked_fill(~valid, float("inf"))
    order = angle.argsort(-1)
    rel = rel.gather(-2, order[..., None].expand_as(rel))
    ok = valid.gather(-1, order)
    rel = torch.where(ok[..., None], rel, rel[..., :1, :])  # padding repeats the first vertex
    area = _cross(rel, rel.roll(-1, -2)).sum(-1) / 2
    return torch.where(valid.sum(-1) >= 3, area.abs(), torch.zeros_like(area))


def quad_intersection(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(...) intersection areas of the counter-clockwise convex quads (..., 4, 2) ``a`` and ``b``."""
    cross_pts, cross_ok = _crossings(a, b)
    points = torch.cat([a, b, cross_pts], -2)  # (..., 24, 2)
    valid = torch.cat([_inside(a, b), _inside(b, a), cross_ok], -1)
    return _hull_area(points, valid)


def bev_intersection(boxes: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """(N, K) intersection areas of (N, 5) and (K, 5) rotated BEV boxes."""
    _check(boxes, "boxes")
    _check(query, "query")
    n, k = len(boxes), len(query)
    a = bev_box_corners(boxes)[:, None].expand(n, k, 4, 2)
    b = bev_box_corners(query)[None].expand(n, k, 4, 2)
    return quad_intersection(a, b)


def bev_iou(boxes: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """(N, K) rotated IoU of (N, 5) and (K, 5) BEV boxes ``(x, y, w, l, ry)``."""
    inter = bev_intersection(boxes, query)
    area_a, area_b = boxes[:, 2] * boxes[:, 3], query[:, 2] * query[:, 3]
    union = area_a[:, None] + area_b[None] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def nearest_bev(boxes: torch.Tensor) -> torch.Tensor:
    """(N, 5) rotated boxes -> (N, 4) axis-aligned ``x1 y1 x2 y2``: the box turned to its nearest
    axis (sizes swapped when |ry| is nearer pi/2 than 0), as SECOND / mmdet3d match anchors."""
    _check(boxes, "boxes")
    ry = boxes[:, 4] - torch.floor(boxes[:, 4] / torch.pi + 0.5) * torch.pi  # in [-pi/2, pi/2)
    swap = ry.abs() > torch.pi / 4
    w = torch.where(swap, boxes[:, 3], boxes[:, 2])
    l_ = torch.where(swap, boxes[:, 2], boxes[:, 3])
    return torch.stack(
        [boxes[:, 0] - w / 2, boxes[:, 1] - l_ / 2, boxes[:, 0] + w / 2, boxes[:, 1] + l_ / 2], 1
    )


def aligned_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, K) IoU of (N, 4) and (K, 4) axis-aligned boxes ``x1 y1 x2 y2``."""
    iw = (torch.minimum(a[:, None, 2], b[None, :, 2]) - torch.maximum(a[:, None, 0], b[None, :, 0])).clamp(
        min=0
    )
    ih = (torch.minimum(a[:, None, 3], b[None, :, 3]) - torch.maximum(a[:, None, 1], b[None, :, 1])).clamp(
        min=0
    )
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))
