"""The pillar feature net (PointPillars, arXiv:1812.05784, section 2.1): a simplified PointNet.

Each pillar's decorated points (:func:`attnlab.models.pointpillars.pillars.decorate`, 9-D) go
through one linear layer, batch norm and ReLU, then a max over the pillar's points; the pillar
features are scattered back to their grid cells: the (B, C, H, W) pseudo-image.

Reference: zhulf0804/PointPillars ``PillarEncoder`` (a 1x1 conv, BN eps 1e-3 momentum 0.01, ReLU,
max over the 32 slots; empty slots are zeroed before the conv and take part in BN and the max,
as there). The scatter is one ``index_put`` (differentiable with respect to the pillar features
and, through the decoration, the points).
"""

from __future__ import annotations

import torch
from torch import nn

from attnlab.models.pointpillars.pillars import Pillars


class PillarFeatureNet(nn.Module):
    """(P, M, in_dim) decorated points -> (P, dim) pillar features."""

    def __init__(self, in_dim: int = 9, dim: int = 64, bn_momentum: float = 0.01) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, dim, bias=False)
        self.norm = nn.BatchNorm1d(dim, eps=1e-3, momentum=bn_momentum)
        self.act = nn.ReLU()  # a module (no parameters), so guided backpropagation can guide it

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        p, m, _ = features.shape
        x = self.linear(features).reshape(p * m, -1)  # (P * M, dim)
        x = self.act(self.norm(x)).reshape(p, m, -1)  # (P, M, dim)
        return x.max(1).values


def scatter_to_bev(features: torch.Tensor, pillars: Pillars, grid_hw: tuple[int, int]) -> torch.Tensor:
    """(P, C) pillar features -> (B, C, H, W) pseudo-image, zeros where no pillar is."""
    h, w = grid_hw
    canvas = features.new_zeros((pillars.batch_size, h * w, features.shape[1]))  # (B, H * W, C)
    cell = pillars.coords[:, 1] * w + pillars.coords[:, 2]
    canvas = canvas.index_put((pillars.coords[:, 0], cell), features)
    return canvas.transpose(1, 2).reshape(pillars.batch_size, -1, h, w)  # (B, C, H, W)
