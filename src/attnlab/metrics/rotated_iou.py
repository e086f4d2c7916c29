"""Overlap of boxes: axis-aligned 2-D IoU, rotated bird's-eye-view IoU and 3-D IoU, in numpy.

The rotated intersection is exact float64 geometry (no compiled kernel): the intersection of
two convex quadrilaterals is the convex hull of the corners of each that lie inside the other
and the crossings of their edges; its vertices are sorted by angle about their mean and the
area is the shoelace sum. Every pair is computed at once, padded to 24 candidate vertices.

The box conventions follow KITTI's camera frame, as the official evaluation uses them:
a BEV box is ``(x, z, l, w, ry)`` with the length ``l`` along ``(cos ry, -sin ry)`` in the
``x``-``z`` plane; a 3-D box is ``(x, y, z, l, h, w, ry)`` with ``y`` the bottom (camera ``y``
points down, so the box spans ``[y - h, y]``).
"""

from __future__ import annotations

import numpy as np

from attnlab.errors import InputError

# Boxes whose corners lie this close to the other box's edges count as inside: identical and
# flipped boxes share their corners exactly, and float64 rounding must not drop them.
_INSIDE_EPS = 1e-9


def box2d_iou(boxes: np.ndarray, query: np.ndarray, criterion: int = -1) -> np.ndarray:
    """Overlap of (N, 4) and (K, 4) boxes ``x1 y1 x2 y2`` as (N, K).

    ``criterion`` -1 divides by the union, 0 by the area of ``boxes[i]`` (the official
    evaluation's DontCare test: how much of a detection a DontCare region covers).
    """
    a = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(query, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)  # (N, K)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    if criterion == -1:
        denom = area_a[:, None] + area_b[None, :] - inter
    elif criterion == 0:
        denom = np.broadcast_to(area_a[:, None], inter.shape)
    else:
        raise InputError(f"box2d_iou criterion must be -1 (union) or 0 (first box), got {criterion}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / denom, 0.0)


def bev_corners(boxes: np.ndarray) -> np.ndarray:
    """(N, 5) boxes ``(x, z, l, w, ry)`` -> (N, 4, 2) corners, counter-clockwise in (x, z)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    half_l, half_w = b[:, 2] / 2, b[:, 3] / 2
    local = np.stack(
        [
            np.stack([-half_l, -half_w], -1),
            np.stack([half_l, -half_w], -1),
            np.stack([half_l, half_w], -1),
            np.stack([-half_l, half_w], -1),
        ],
        axis=1,
    )  # (N, 4, 2)
    cos, sin = np.cos(b[:, 4]), np.sin(b[:, 4])
    # KITTI's heading: the length axis is (cos ry, -sin ry) in (x, z), the width axis (sin, cos).
    x = cos[:, None] * local[..., 0] + sin[:, None] * local[..., 1] + b[:, None, 0]
    z = -sin[:, None] * local[..., 0] + cos[:, None] * local[..., 1] + b[:, None, 1]
    return np.stack([x, z], -1)  # a rotation (det 1), so still counter-clockwise


def _polygon_area(points: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Area of the convex hull of the ``valid`` points of each (P, V, 2) set (P,)."""
    count = valid.sum(1)
    weight = valid.astype(np.float64)
    center = (points * weight[..., None]).sum(1) / np.maximum(count, 1)[:, None]  # (P, 2)
    rel = points - center[:, None]
    angle = np.arctan2(rel[..., 1], rel[..., 0])
    angle = np.where(valid, angle, np.inf)  # invalid points sort last
    order = np.argsort(angle, axis=1, kind="stable")
    rel = np.take_along_axis(rel, order[..., None], 1)
    ok = np.take_along_axis(valid, order, 1)
    # Close the polygon: each valid vertex pairs with the next valid one (the first after the last).
    nxt = np.roll(rel, -1, axis=1)
    first = rel[:, :1]
    last_index = np.maximum(count - 1, 0)
    is_last = np.arange(rel.shape[1])[None, :] == last_index[:, None]
    nxt = np.where(is_last[..., None], first, nxt)
    cross = rel[..., 0] * nxt[..., 1] - rel[..., 1] * nxt[..., 0]
    area = 0.5 * np.abs(np.where(ok, cross, 0.0).sum(1))
    return np.where(count >= 3, area, 0.0)


def _inside(points: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """Whether each of (P, M, 2) points lies in the counter-clockwise (P, 4, 2) quad (P, M)."""
    edge = np.roll(quads, -1, axis=1) - quads  # (P, 4, 2)
    rel = points[:, :, None, :] - quads[:, None, :, :]  # (P, M, 4, 2)
    cross = edge[:, None, :, 0] * rel[..., 1] - edge[:, None, :, 1] * rel[..., 0]
    scale = np.linalg.norm(edge, axis=-1)[:, None, :]
    return np.all(cross >= -_INSIDE_EPS * np.maximum(scale, 1.0), axis=-1)


def _edge_crossings(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crossings of the edges of (P, 4, 2) quads a and b: points (P, 16, 2) and a mask (P, 16)."""
    p, r = a[:, :, None, :], (np.roll(a, -1, axis=1) - a)[:, :, None, :]  # (P, 4, 1, 2)
    q, s = b[:, None, :, :], (np.roll(b, -1, axis=1) - b)[:, None, :, :]  # (P, 1, 4, 2)
    denom = r[..., 0] * s[..., 1] - r[..., 1] * s[..., 0]  # (P, 4, 4)
    qp = q - p
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (qp[..., 0] * s[..., 1] - qp[..., 1] * s[..., 0]) / denom
        u = (qp[..., 0] * r[..., 1] - qp[..., 1] * r[..., 0]) / denom
    # Parallel edges never add a vertex of their own: their shared points are corners.
    ok = (np.abs(denom) > 1e-12) & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1)
    points = p + np.where(ok, t, 0.0)[..., None] * r
    return points.reshape(len(a), 16, 2), ok.reshape(len(a), 16)


def bev_intersection(boxes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Area of intersection of (N, 5) and (K, 5) rotated BEV boxes ``(x, z, l, w, ry)`` (N, K)."""
    a_all, b_all = bev_corners(boxes), bev_corners(query)
    n, k = len(a_all), len(b_all)
    out = np.zeros((n, k))
    if n == 0 or k == 0:
        return out
    # Only pairs whose bounding circles meet can intersect; the rest stay 0.
    ca, cb = a_all.mean(1), b_all.mean(1)
    ra = np.linalg.norm(a_all - ca[:, None], axis=-1).max(1)
    rb = np.linalg.norm(b_all - cb[:, None], axis=-1).max(1)
    dist = np.linalg.norm(ca[:, None] - cb[None], axis=-1)
    ii, jj = np.nonzero(dist < ra[:, None] + rb[None, :])
    if len(ii) == 0:
        return out
    a, b = a_all[ii], b_all[jj]  # (P, 4, 2)
    cross_pts, cross_ok = _edge_crossings(a, b)
    points = np.concatenate([a, b, cross_pts], axis=1)  # (P, 24, 2)
    valid = np.concatenate([_inside(a, b), _inside(b, a), cross_ok], axis=1)
    out[ii, jj] = _polygon_area(points, valid)
    return out


def bev_iou(boxes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """IoU of (N, 5) and (K, 5) rotated BEV boxes ``(x, z, l, w, ry)`` (N, K)."""
    a = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    b = np.asarray(query, dtype=np.float64).reshape(-1, 5)
    inter = bev_intersection(a, b)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / union, 0.0)


def box3d_iou(boxes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """IoU of (N, 7) and (K, 7) camera-frame boxes ``(x, y, z, l, h, w, ry)`` (N, K).

    The volume of intersection is the BEV intersection times the overlap of the vertical
    extents ``[y - h, y]`` (``y`` is the bottom face; camera ``y`` points down).
    """
    a = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    b = np.asarray(query, dtype=np.float64).reshape(-1, 7)
    inter_bev = bev_intersection(a[:, [0, 2, 3, 5, 6]], b[:, [0, 2, 3, 5, 6]])  # (N, K)
    top = np.maximum(a[:, None, 1] - a[:, None, 4], b[None, :, 1] - b[None, :, 4])
    bottom = np.minimum(a[:, None, 1], b[None, :, 1])
    inter = inter_bev * np.clip(bottom - top, 0.0, None)
    vol_a = a[:, 3] * a[:, 4] * a[:, 5]
    vol_b = b[:, 3] * b[:, 4] * b[:, 5]
    union = vol_a[:, None] + vol_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / union, 0.0)
