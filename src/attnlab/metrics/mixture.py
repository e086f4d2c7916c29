"""Sample quality on a known Gaussian mixture (the 2D GAN benchmarks of Unrolled GAN and VEEGAN).

A point is of high quality when it lies within ``3 * std`` of its nearest mode's mean
(98.9 % of the mixture's own points do, in 2D). A mode is covered when it receives at
least ``coverage`` times its fair share (``N / K``) of the high-quality points, so a
generator that collapses onto a few modes covers only those.
"""

from __future__ import annotations

import torch

from attnlab.errors import InputError


def mixture_quality(
    points: torch.Tensor, centers: torch.Tensor, std: float, coverage: float = 0.2
) -> dict[str, torch.Tensor]:
    """``high_quality`` (fraction of points) and ``modes`` (modes covered) of (N, D) points."""
    if points.dim() != 2 or centers.dim() != 2 or points.shape[1] != centers.shape[1]:
        raise InputError(
            f"points (N, D) and centers (K, D) must agree, "
            f"got {tuple(points.shape)} and {tuple(centers.shape)}"
        )
    dist = torch.cdist(points.float(), centers.to(points).float())  # (N, K)
    nearest, mode = dist.min(dim=1)  # (N,), (N,)
    good = nearest <= 3 * std
    counts = torch.bincount(mode[good], minlength=len(centers))  # (K,) high-quality points per mode
    fair = len(points) / len(centers)
    return {
        "high_quality": good.float().mean(),
        "modes": (counts >= coverage * fair).sum().float(),
    }
