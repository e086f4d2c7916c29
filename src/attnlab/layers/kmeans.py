"""Lloyd's k-means, batched, with farthest-point starting centres.

Slot attention is a soft k-means with learned starting slots (Locatello et al. 2020); this is the
hard one, used as a floor (``scripts/vmds_references.py``) and as a clip's own starting point for
the slots (SFA's ``slot_init="kmeans"``, docs/video_reasoning.md). No parameters, no gradient.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from attnlab.errors import InputError


def farthest_point_centres(points: torch.Tensor, clusters: int) -> torch.Tensor:
    """Points (B, N, F) -> centres (B, K, F): the first point, then each time the point farthest from
    the centres so far (the first such point on ties), so every distinct value among the points
    starts a centre of its own while there are at most K of them. Deterministic."""
    batch = torch.arange(points.shape[0], device=points.device)
    centres = points[:, :1]  # (B, 1, F)
    nearest = torch.cdist(points, centres)[..., 0]  # (B, N): distance to the closest centre
    for _ in range(clusters - 1):
        farthest = nearest.argmax(dim=1)  # (B,)
        new = points[batch, farthest][:, None]  # (B, 1, F)
        centres = torch.cat([centres, new], dim=1)  # (B, k + 1, F)
        nearest = torch.minimum(nearest, torch.cdist(points, new)[..., 0])
    return centres


def kmeans(
    points: torch.Tensor, clusters: int, *, iterations: int = 30, centres: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means of points (B, N, F) from ``centres`` (B, K, F) (default: the farthest points):
    each point's cluster (B, N) and the centres (B, K, F) it was assigned to. A cluster that wins no
    point keeps its centre."""
    if points.dim() != 3 or points.shape[1] == 0 or not points.is_floating_point():
        raise InputError(f"points must be floating (B, N>0, F), got {points.dtype} {tuple(points.shape)}")
    if clusters < 1 or iterations < 0:
        raise InputError(f"need clusters >= 1 and iterations >= 0, got {clusters}, {iterations}")
    if centres is None:
        centres = farthest_point_centres(points, clusters)
    elif centres.shape != (points.shape[0], clusters, points.shape[2]):
        want = (points.shape[0], clusters, points.shape[2])
        raise InputError(f"centres must be {want}, got {tuple(centres.shape)}")
    for _ in range(iterations):
        members = F.one_hot(torch.cdist(points, centres).argmin(2), clusters).to(points.dtype)  # (B, N, K)
        counts = members.sum(dim=1)[..., None]  # (B, K, 1)
        means = members.transpose(1, 2) @ points / counts.clamp_min(1)  # (B, K, F)
        centres = torch.where(counts > 0, means, centres)
    return torch.cdist(points, centres).argmin(2), centres
