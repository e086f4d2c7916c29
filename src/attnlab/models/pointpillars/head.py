"""The SSD-style detection head (PointPillars, arXiv:1812.05784, section 2.3).

Three 1x1 convs over the neck's feature map: per anchor, one sigmoid logit per class, seven box
residuals (:mod:`attnlab.models.pointpillars.box_coder`) and two direction logits. Channels are
laid out ``(anchor at the cell, value)``, so a map reshapes to ``(B, H * W * anchors, values)`` in
the order of :func:`attnlab.models.pointpillars.anchors.make_anchors`.

Reference: zhulf0804/PointPillars ``Head`` (class bias initialised to ``-log((1 - 0.01) / 0.01)``,
the focal-loss prior; weights from N(0, 0.01)).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class DetectionHead(nn.Module):
    def __init__(self, in_dim: int, anchors_per_location: int, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.cls = nn.Conv2d(in_dim, anchors_per_location * num_classes, 1)
        self.box = nn.Conv2d(in_dim, anchors_per_location * 7, 1)
        self.dir = nn.Conv2d(in_dim, anchors_per_location * 2, 1)
        for conv in (self.cls, self.box, self.dir):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)  # type: ignore[arg-type]  # Conv2d(..., bias=True) has one
        nn.init.constant_(self.cls.bias, -math.log((1 - 0.01) / 0.01))  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, C, H, W) -> class logits (B, A, classes), residuals (B, A, 7), direction (B, A, 2)."""
        b = x.shape[0]

        def flat(conv: nn.Conv2d, width: int) -> torch.Tensor:
            return conv(x).permute(0, 2, 3, 1).reshape(b, -1, width)  # (B, H * W * anchors, width)

        return flat(self.cls, self.num_classes), flat(self.box, 7), flat(self.dir, 2)
