"""3D residual blocks and stages (Hara et al. 2018, "Can spatiotemporal 3D CNNs retrace the
history of 2D CNNs and ImageNet?", arXiv:1711.09577; He et al. 2016 for the 2D originals).

Video tensors are (B, C, T, H, W). Stages keep the time resolution and halve the
space (stride (1, 2, 2)), so a per-frame temporal attention stays aligned with
the input frames, as ST-ABN needs.
"""

from __future__ import annotations

import torch
from torch import nn

Stride = tuple[int, int, int]


def _bn_conv(cin: int, cout: int, kernel: tuple[int, int, int], stride: Stride = (1, 1, 1)) -> nn.Sequential:
    padding = (kernel[0] // 2, kernel[1] // 2, kernel[2] // 2)
    return nn.Sequential(nn.Conv3d(cin, cout, kernel, stride, padding, bias=False), nn.BatchNorm3d(cout))


class BasicBlock3d(nn.Module):
    """Two 3x3x3 convs with an identity (or 1x1x1 projection) shortcut."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, *, stride: Stride = (1, 1, 1)) -> None:
        super().__init__()
        out = channels * self.expansion
        self.conv1 = _bn_conv(in_channels, channels, (3, 3, 3), stride)
        self.conv2 = _bn_conv(channels, out, (3, 3, 3))
        self.shortcut = _shortcut(in_channels, out, stride)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.act(self.conv1(x))) + self.shortcut(x))


class Bottleneck3d(nn.Module):
    """1x1x1 -> 3x3x3 -> 1x1x1 (x4 channels), shortcut as in BasicBlock3d."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, *, stride: Stride = (1, 1, 1)) -> None:
        super().__init__()
        out = channels * self.expansion
        self.conv1 = _bn_conv(in_channels, channels, (1, 1, 1))
        self.conv2 = _bn_conv(channels, channels, (3, 3, 3), stride)
        self.conv3 = _bn_conv(channels, out, (1, 1, 1))
        self.shortcut = _shortcut(in_channels, out, stride)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.conv2(self.act(self.conv1(x))))
        return self.act(self.conv3(h) + self.shortcut(x))


def _shortcut(cin: int, cout: int, stride: Stride) -> nn.Module:
    if cin == cout and stride == (1, 1, 1):
        return nn.Identity()
    return nn.Sequential(nn.Conv3d(cin, cout, 1, stride, bias=False), nn.BatchNorm3d(cout))


Block3d = type[BasicBlock3d] | type[Bottleneck3d]


def make_stage3d(
    block: Block3d, in_channels: int, channels: int, depth: int, *, stride: Stride
) -> nn.Sequential:
    """``depth`` blocks; the first one strides and changes the width."""
    blocks = [block(in_channels, channels, stride=stride)]
    blocks += [block(channels * block.expansion, channels) for _ in range(depth - 1)]
    return nn.Sequential(*blocks)


class Stem3d(nn.Sequential):
    """Conv (1, 7, 7) stride (1, 2, 2) + BN + ReLU (+ max-pool (1, 3, 3) stride (1, 2, 2)); time untouched."""

    def __init__(self, in_channels: int, width: int, *, pool: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.Conv3d(in_channels, width, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
        ]
        if pool:
            layers.append(nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))
        super().__init__(*layers)


BLOCKS: dict[str, Block3d] = {"basic": BasicBlock3d, "bottleneck": Bottleneck3d}
DEPTHS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    10: ("basic", (1, 1, 1, 1)),
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
}


def resnet3d_trunk(
    depth: int, *, width: int, in_channels: int, stem_pool: bool
) -> tuple[Stem3d, nn.ModuleList, list[int]]:
    """Stem and the four stages of a 3D ResNet, and each stage's output width.

    Stage 1 keeps the stem's resolution; stages 2-4 halve space and keep time.
    """
    if depth not in DEPTHS:
        raise ValueError(f"3D ResNet depth must be one of {sorted(DEPTHS)}, got {depth}")
    kind, counts = DEPTHS[depth]
    block = BLOCKS[kind]
    stem = Stem3d(in_channels, width, pool=stem_pool)
    stages, widths, cin = nn.ModuleList(), [], width
    for i, count in enumerate(counts):
        channels = width * 2**i
        stride: Stride = (1, 1, 1) if i == 0 else (1, 2, 2)
        stages.append(make_stage3d(block, cin, channels, count, stride=stride))
        cin = channels * block.expansion
        widths.append(cin)
    return stem, stages, widths


def block_for_depth(depth: int) -> Block3d:
    return BLOCKS[DEPTHS[depth][0]]
