"""Residual networks (He et al., CVPR 2016, arXiv:1512.03385) as reusable stages.

Two layouts, both built from the same blocks and stage builder:

* ``style="cifar"``: 3x3 conv 16 + BN + ReLU at full resolution, then three stages
  of widths 16, 32, 64 (strides 1, 2, 2), global average pool, linear. ``depth`` is
  6n + 2 with n blocks per stage. He et al. use basic blocks and parameter-free
  "option A" shortcuts (stride-2 subsampling, zero channels appended):
  ``block="basic", shortcut="zero_pad"`` gives their 0.27M / 0.85M / 1.7M models.
  The ABN reference (machine-perception-robotics-group/attention_branch_network,
  itself from bearpaw/pytorch-classification) uses 1x1 conv + BN projections and
  switches to bottleneck blocks for depth >= 44 *keeping n = (depth - 2) / 6* blocks
  per stage (so its "ResNet-56" has 9 bottlenecks per stage and ends at 256
  channels); :func:`official_cifar_block` states that rule.
* ``style="imagenet"``: 7x7/2 conv 64 + BN + ReLU + 3x3/2 max pool, four stages of
  widths 64..512 (strides 1, 2, 2, 2) with the torchvision block counts, global
  average pool, linear. Bottlenecks stride in their 3x3 conv (torchvision's
  "v1.5"), shortcuts are projections where shape changes; parameter counts equal
  torchvision's (11,689,512 for ResNet-18, 25,557,032 for ResNet-50).

Module names inside a block follow torchvision (``conv1, bn1, ..., downsample.0/1``)
so checkpoints of that lineage map onto it by renaming only the stem and stages.
Deviations: the reference's fixed-size average pools are global means here (equal
on the sizes they were written for, and valid for any input size); ``in_chans``
makes the stem accept e.g. 1-channel Fashion-MNIST.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import ConfigError, InputError

Style = Literal["cifar", "imagenet"]
Block = Literal["basic", "bottleneck"]
Shortcut = Literal["projection", "zero_pad"]  # 1x1 conv + BN | He et al.'s option A
CIFAR_WIDTHS = (16, 32, 64)
IMAGENET_WIDTHS = (64, 128, 256, 512)
# depth -> (block, blocks per stage), as torchvision and He et al. Table 1 define them
IMAGENET_DEPTHS: dict[int, tuple[Block, tuple[int, ...]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def official_cifar_block(depth: int) -> Block:
    """The block the ABN / pytorch-classification CIFAR ResNets use at ``depth``."""
    return "bottleneck" if depth >= 44 else "basic"


class ZeroPadShortcut(nn.Module):
    """He et al.'s option A: subsample by ``stride`` and append zero channels; no parameters."""

    def __init__(self, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__()
        if out_chs < in_chs:
            raise ConfigError(f"a zero-pad shortcut cannot reduce channels ({in_chs} -> {out_chs})")
        self.extra = out_chs - in_chs
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]  # (B, C, H / s, W / s)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))  # (B, C + extra, H / s, W / s)


def make_shortcut(
    in_chs: int, out_chs: int, stride: int, shortcut: Shortcut, norm_layer: type[nn.Module]
) -> nn.Module | None:
    """The block's skip path: None (identity) unless stride or width change."""
    if stride == 1 and in_chs == out_chs:
        return None
    if shortcut == "zero_pad":
        return ZeroPadShortcut(in_chs, out_chs, stride)
    return nn.Sequential(nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False), norm_layer(out_chs))


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual: relu(bn2(conv2(relu(bn1(conv1(x))))) + skip(x))."""

    expansion = 1

    def __init__(
        self,
        in_chs: int,
        width: int,
        *,
        stride: int = 1,
        shortcut: Shortcut = "projection",
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chs, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = norm_layer(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = norm_layer(width)
        self.act = act_layer()
        self.downsample = make_shortcut(in_chs, width, stride, shortcut, norm_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out = self.act(self.bn1(self.conv1(x)))
        return self.act(self.bn2(self.conv2(out)) + skip)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand to 4 x width, with a residual."""

    expansion = 4

    def __init__(
        self,
        in_chs: int,
        width: int,
        *,
        stride: int = 1,
        shortcut: Shortcut = "projection",
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        out_chs = width * self.expansion
        self.conv1 = nn.Conv2d(in_chs, width, 1, bias=False)
        self.bn1 = norm_layer(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = norm_layer(width)
        self.conv3 = nn.Conv2d(width, out_chs, 1, bias=False)
        self.bn3 = norm_layer(out_chs)
        self.act = act_layer()
        self.downsample = make_shortcut(in_chs, out_chs, stride, shortcut, norm_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        return self.act(self.bn3(self.conv3(out)) + skip)


BLOCK_TYPES: dict[Block, type[BasicBlock] | type[Bottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
}


@dataclass(frozen=True)
class StageSpec:
    """One residual stage: ``num_blocks`` blocks of ``width`` (output ``width * expansion``)."""

    width: int
    num_blocks: int
    stride: int


def make_stage(
    block: Block,
    in_chs: int,
    spec: StageSpec,
    *,
    shortcut: Shortcut = "projection",
    norm_layer: type[nn.Module] = nn.BatchNorm2d,
) -> nn.Sequential:
    """A stage; only its first block strides and changes width (so only it has a shortcut)."""
    cls = BLOCK_TYPES[block]
    out_chs = spec.width * cls.expansion
    blocks = [
        cls(
            in_chs if i == 0 else out_chs,
            spec.width,
            stride=spec.stride if i == 0 else 1,
            shortcut=shortcut,
            norm_layer=norm_layer,
        )
        for i in range(spec.num_blocks)
    ]
    return nn.Sequential(*blocks)


def stage_out_channels(block: Block, spec: StageSpec) -> int:
    return spec.width * BLOCK_TYPES[block].expansion


class ResNetStem(nn.Module):
    """CIFAR: 3x3 conv 16 + BN + ReLU. ImageNet: 7x7/2 conv 64 + BN + ReLU + 3x3/2 max pool."""

    def __init__(self, style: Style, in_chans: int, norm_layer: type[nn.Module] = nn.BatchNorm2d) -> None:
        super().__init__()
        if style == "cifar":
            self.conv = nn.Conv2d(in_chans, CIFAR_WIDTHS[0], 3, padding=1, bias=False)
            self.pool: nn.Module = nn.Identity()
        else:
            self.conv = nn.Conv2d(in_chans, IMAGENET_WIDTHS[0], 7, stride=2, padding=3, bias=False)
            self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.out_chs = self.conv.out_channels
        self.norm = norm_layer(self.out_chs)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.norm(self.conv(x))))


@dataclass
class ResNetConfig:
    """A ResNet classifier; ``style`` picks the CIFAR or ImageNet layout (module docstring)."""

    style: Style = "cifar"
    depth: int = 20  # cifar: 6n + 2; imagenet: 18, 34, 50, 101 or 152
    block: Block = "basic"  # imagenet depths fix it
    shortcut: Shortcut = "projection"
    num_classes: int = 10
    in_chans: int = 3


def stage_specs(config: ResNetConfig) -> list[StageSpec]:
    """The stages a config describes; raises ConfigError for an impossible one."""
    c = config
    for name, value, valid in (
        ("style", c.style, Style),
        ("block", c.block, Block),
        ("shortcut", c.shortcut, Shortcut),
    ):
        if value not in get_args(valid):
            raise ConfigError(f"ResNet {name} must be one of {get_args(valid)}, got {value!r}")
    if c.num_classes < 1 or c.in_chans < 1:
        raise ConfigError(f"num_classes and in_chans must be >= 1, got {c.num_classes}, {c.in_chans}")
    if c.style == "cifar":
        if c.depth < 8 or (c.depth - 2) % 6:
            raise ConfigError(f"a CIFAR ResNet's depth must be 6n + 2 with n >= 1, got {c.depth}")
        n = (c.depth - 2) // 6
        return [StageSpec(w, n, s) for w, s in zip(CIFAR_WIDTHS, (1, 2, 2), strict=True)]
    if c.depth not in IMAGENET_DEPTHS:
        raise ConfigError(
            f"an ImageNet ResNet's depth must be one of {sorted(IMAGENET_DEPTHS)}, got {c.depth}"
        )
    block, counts = IMAGENET_DEPTHS[c.depth]
    if c.block != block:
        raise ConfigError(f"ImageNet ResNet-{c.depth} uses {block} blocks, got block={c.block!r}")
    return [StageSpec(w, n, s) for w, n, s in zip(IMAGENET_WIDTHS, counts, (1, 2, 2, 2), strict=True)]


def make_stages(config: ResNetConfig, specs: list[StageSpec], in_chs: int) -> tuple[nn.ModuleList, int]:
    """Chain ``specs`` from ``in_chs`` channels; returns the stages and their output channels."""
    stages = nn.ModuleList()
    for spec in specs:
        stages.append(make_stage(config.block, in_chs, spec, shortcut=config.shortcut))
        in_chs = stage_out_channels(config.block, spec)
    return stages, in_chs


def init_resnet_(model: nn.Module) -> None:
    """He-normal convs (fan_out, as both reference codes), BN scale 1 and shift 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def check_images(images: torch.Tensor, in_chans: int) -> None:
    if images.dim() != 4 or images.shape[1] != in_chans or not images.is_floating_point():
        raise InputError(
            f"images must be floating (B, {in_chans}, H, W), got {images.dtype} {tuple(images.shape)}"
        )
    if images.shape[0] < 1 or min(images.shape[2:]) < 1:
        raise InputError(f"images must be non-empty, got shape {tuple(images.shape)}")


def example_images(config: ResNetConfig, batch_size: int) -> torch.Tensor:
    # ImageNet nets take any size >= 32; 64 keeps the registry-wide tests fast on a CPU
    size = 32 if config.style == "cifar" else 64
    return torch.randn(batch_size, config.in_chans, size, size)
