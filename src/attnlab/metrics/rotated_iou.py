"""Overlap of boxes: axis-aligned 2-D IoU, rotated bird's-eye-view IoU and 3-D IoU, in numpy.

The rotated intersection is exact float64 geometry (no compiled kernel):
:func:`attnlab.layers.rotated_boxes.quad_intersection` (the detector's NMS uses the same) on
the camera-frame corners of every pair whose bounding circles meet, all at once.

The box conventions follow KITTI's camera frame, as the official evaluation uses them:
a BEV box is ``(x, z, l, w, ry)`` with the length ``l`` along ``(cos ry, -sin ry)`` in the
``x``-``z`` plane; a 3-D box is ``(x, y, z, l, h, w, ry)`` with ``y`` the bottom (camera ``y``
points down, so the box spans ``[y - h, y]``).
"""

from __future__ import annotations

import numpy as np
import torch

from attnlab.errors import InputError
from attnlab.layers.rotated_boxes import quad_intersection


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
    pairs = quad_intersection(torch.from_numpy(a_all[ii]), torch.from_numpy(b_all[jj]))  # (P,) float64
    out[ii, jj] = pairs.numpy()
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
