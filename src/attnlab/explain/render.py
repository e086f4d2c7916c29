"""Display helpers for pictures of where a model looks: images to show, maps at image size.

The figures themselves (heat maps over images and video frames, with colour bars and class
names) are in :mod:`attnlab.train.figures`."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import torch
import torch.nn.functional as F

from attnlab.errors import InputError


def to_display(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) any range -> (N, H, W, 3) in [0, 1], each image min-max scaled on its own."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise InputError(f"images must be (N, 1|3, H, W), got {tuple(images.shape)}")
    x = images.detach().float().cpu()
    low = x.amin(dim=(1, 2, 3), keepdim=True)
    high = x.amax(dim=(1, 2, 3), keepdim=True)
    x = (x - low) / (high - low).clamp_min(1e-8)
    return x.expand(-1, 3, -1, -1).permute(0, 2, 3, 1)  # (N, H, W, 3)


def upsample_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, h, w) or (N, 1, h, w) -> (N, H, W), bilinear."""
    if maps.dim() == 4 and maps.shape[1] == 1:
        maps = maps[:, 0]
    if maps.dim() != 3:
        raise InputError(f"maps must be (N, h, w) or (N, 1, h, w), got {tuple(maps.shape)}")
    return F.interpolate(
        maps.detach().float().cpu()[:, None], size=size, mode="bilinear", align_corners=False
    )[:, 0]
