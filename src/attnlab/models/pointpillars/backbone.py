"""The 2-D backbone and neck (PointPillars, arXiv:1812.05784, section 2.2).

Top-down: blocks ``Block(S, L, F)`` of a stride-S 3x3 conv then L stride-1 3x3 convs with F
channels (each conv followed by BatchNorm and ReLU); KITTI: (2, 3, 64), (2, 5, 128), (2, 5, 256).
Neck: each block's output upsampled by a transposed conv ``Up(S_in, S_out, F)`` (BN, ReLU) to
one resolution and concatenated: 3 x 128 channels at stride 2 of the pseudo-image.

Reference: zhulf0804/PointPillars ``Backbone`` and ``Neck`` (BN eps 1e-3, momentum 0.01 by
default; no conv biases).
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn_relu(cin: int, cout: int, stride: int, momentum: float) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout, eps=1e-3, momentum=momentum),
        nn.ReLU(inplace=True),
    ]


class Backbone(nn.Module):
    """(B, in_dim, H, W) -> (B, sum(up_channels), H / strides[0], W / strides[0])."""

    def __init__(
        self,
        in_dim: int,
        channels: tuple[int, ...],
        layer_nums: tuple[int, ...],
        strides: tuple[int, ...],
        up_strides: tuple[int, ...],
        up_channels: tuple[int, ...],
        bn_momentum: float = 0.01,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        self.ups = nn.ModuleList()
        cin = in_dim
        for cout, num, stride, up, up_dim in zip(
            channels, layer_nums, strides, up_strides, up_channels, strict=True
        ):
            layers = _conv_bn_relu(cin, cout, stride, bn_momentum)
            for _ in range(num):
                layers += _conv_bn_relu(cout, cout, 1, bn_momentum)
            self.blocks.append(nn.Sequential(*layers))
            self.ups.append(
                nn.Sequential(
                    nn.ConvTranspose2d(cout, up_dim, up, stride=up, bias=False),
                    nn.BatchNorm2d(up_dim, eps=1e-3, momentum=bn_momentum),
                    nn.ReLU(inplace=True),
                )
            )
            cin = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for block, up in zip(self.blocks, self.ups, strict=True):
            x = block(x)
            outs.append(up(x))
        return torch.cat(outs, 1)
