"""Each frame's own clustering of its pixels, from which SFA's slots can start (``slot_init="kmeans"``).

A k-means of each pixel's colour and its weighted (y, x) is the floor that no slot encoder trained
on CLEVRER-lite clips beat by FG-ARI (0.690 with the chromaticity and weight 1, whose clusters hold
each object with the floor around it: matched IoU 0.255; docs/video_reasoning.md). Learned
starting slots are the same on every clip, so a slot that starts on a colour takes every object of
it. Started from a clip's own clusters, slot k begins on cluster k's pixels, and training decides
what the iterations make of them (measured: it regroups them by colour, test FG-ARI 0.553;
docs/video_reasoning.md). No labels are read, and no gradient flows through the clustering.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch.nn import functional as F

from attnlab.layers.kmeans import kmeans
from attnlab.layers.pos_embed import cell_centres
from attnlab.models.object_centric.colour import chromaticity


@torch.no_grad()
def frame_clusters(
    video: torch.Tensor,
    grid: tuple[int, int],
    clusters: int,
    colour: Literal["rgb", "chromaticity"],
    position_weight: float,
    iterations: int = 30,
) -> torch.Tensor:
    """Video (B, T, 3, H, W) in [0, 1] -> each frame's clusters of the token grid's cells (B, T, K, h*w),
    one-hot over K, row-major like the tokens. A cell's features are its area-averaged colour (rgb or
    chromaticity) and ``position_weight`` times its centre (y, x) in [0, 1]. Frame 0 starts from the
    farthest points; frame t from frame t-1's centres, so that cluster k follows the same object."""
    B, T = video.shape[:2]
    h, w = grid
    frames = F.interpolate(video.flatten(0, 1), size=grid, mode="area")  # (B*T, 3, h, w)
    if colour == "chromaticity":
        frames = chromaticity(frames)
    where = position_weight * cell_centres(h, w).to(frames)[None, None]  # (1, 1, N, 2)
    colours = frames.flatten(2).transpose(1, 2).view(B, T, h * w, 3)  # (B, T, N, 3)
    points = torch.cat([colours, where.expand(B, T, -1, -1)], dim=-1)  # (B, T, N, 5)
    assigned, centres = [], None
    for t in range(T):
        nearest, centres = kmeans(points[:, t], clusters, iterations=iterations, centres=centres)  # (B, N)
        assigned.append(nearest)
    one_hot = F.one_hot(torch.stack(assigned, dim=1), clusters)  # (B, T, N, K)
    return one_hot.transpose(2, 3).to(video.dtype)  # (B, T, K, N)
