"""Object tokens from each frame's k-means clusters: the clustering floor for Aloe (``data.encoder kmeans``).

The slot encoders trained on CLEVRER-lite clips did not beat a k-means of each pixel's chromaticity and
(y, x) at separating objects (FG-ARI 0.690; docs/video_reasoning.md). Aloe on that clustering's
segments is the floor their question-answering rows have to beat: what a video's questions can learn
from segments that no training made. A cluster's token is what the segment shows, its pixels' mean rgb
and their spread per channel (a shaded or highlighted surface spreads more), with the centroid and area
of :func:`attnlab.models.video_qa.aloe.mask_summary`, as the slot tokens have. Frame t's clustering
starts from frame t-1's centres (:func:`frame_clusters`), so token k follows the same segment.
Measured: Aloe on these tokens answers at the question-only prior (descriptive 0.392 against 0.401),
where the trained encoders' slots reach 0.441-0.449.
"""

from __future__ import annotations

import torch

from attnlab.errors import InputError
from attnlab.models.object_centric.frame_clusters import frame_clusters
from attnlab.models.video_qa.aloe import append_mask_summary
from attnlab.models.video_qa.aloe_slots import SUMMARY_DIM
from attnlab.models.video_qa.mask_pixels import COLOUR_DIM, mask_colour, mask_pixels

CLUSTER_TOKEN_DIM = COLOUR_DIM + SUMMARY_DIM
POSITION_WEIGHT = 1.0  # the weight of (y, x) beside the chromaticity at which the floor scores best


@torch.no_grad()
def cluster_tokens(video: torch.Tensor, clusters: int, *, extent: bool = False) -> torch.Tensor:
    """Video (B, T, 3, H, W) in [0, 1] -> (B, T, K, 9) tokens of each frame's K clusters of its pixels;
    with ``extent`` (B, T, K, 11): the spread of y and x too, all of
    :func:`~attnlab.models.video_qa.mask_pixels.mask_pixels`, the floor of the ``slot_pixels`` rows."""
    if video.dim() != 5 or video.shape[2] != 3 or not video.is_floating_point():
        raise InputError(f"video must be floating (B, T, 3, H, W), got {video.dtype} {tuple(video.shape)}")
    if clusters < 1:
        raise InputError(f"clusters must be >= 1, got {clusters}")
    B, T, _, H, W = video.shape
    masks = frame_clusters(video, (H, W), clusters, "chromaticity", POSITION_WEIGHT)  # (B, T, K, H*W)
    masks = masks.view(B, T, clusters, H, W)
    shown = mask_pixels(video, masks) if extent else mask_colour(video, masks)  # zeros for an empty cluster
    return append_mask_summary(shown, masks)
