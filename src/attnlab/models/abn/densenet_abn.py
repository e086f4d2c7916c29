"""Attention Branch Network on a CIFAR DenseNet-BC (Fukui et al., CVPR 2019, arXiv:1812.10025).

Backbone: DenseNet-BC-L-k of Huang et al. (CVPR 2017, arXiv:1608.06993): a 3x3 conv
to 2k channels, then three dense blocks of n = (L - 4) / 6 bottleneck layers
(BN-ReLU-conv1x1 to 4k -BN-ReLU-conv3x3 to k [-dropout], output concatenated to
the input), with a transition (BN-ReLU-conv1x1 to floor(theta * C) -2x2 average
pool) after the first two blocks.

ABN layout, as the reference (machine-perception-robotics-group/attention_branch_network,
``models/cifar/densenet.py``): the attention branch is a copy of dense block 3 run on
the output f of the second transition, followed by
:class:`attnlab.layers.branch.AttentionBranchHead` (its BN reads the block's raw
concatenation). The perception branch runs dense block 3 on ``(1 + M) * f``, then
BN-ReLU, global average pool and a linear layer. Unlike the ResNet-ABNs, nothing
here needs a stride-1 copy: a dense block never downsamples (the transitions do,
and neither branch has one after block 3), so M is at the resolution of the
perception branch's last block (8 x 8 on CIFAR, not 16 x 16). Weight init as the
reference: convs N(0, 2 / (k * k * out_channels)), BN scale 1 and shift 0, linear
left as torch's default.

Deviations: ``compression`` is the DenseNet paper's theta (the reference's integer
``compressionRate`` 2 is theta = 0.5; transitions keep ``floor(theta * C)`` channels,
the reference's ``C // 2``); only the BC (bottleneck) variant, the one the reference's
training script builds; depth must be 6n + 4 (the reference asserts 3n + 4 and then
floors (L - 4) / 6). The fixed ``AvgPool2d(8)`` are global means; ``in_chans`` widens
the stem; ``map_kernel_size`` (the reference's 3) selects the map conv;
``attention_override`` replaces M in the perception branch. The forward is
:class:`attnlab.models.abn.branch_network.BranchNetwork`'s; ``OFFICIAL_KEYS`` maps the
reference's parameter names to ours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.layers.residual import init_resnet_
from attnlab.models._registry import register_model
from attnlab.models.abn.branch_network import OFFICIAL_HEAD_KEYS, ABNBackbone, BranchNetwork, KeyRule

BOTTLENECK_EXPANSION = 4  # the 1x1 conv of a dense layer outputs 4k channels


@dataclass
class ABNDenseNetConfig:
    """DenseNet-BC-depth-growth_rate with an attention branch."""

    depth: int = 100  # 6n + 4: n bottleneck layers per dense block
    growth_rate: int = 12  # k
    compression: float = 0.5  # theta: a transition keeps floor(theta * C) channels
    drop_rate: float = 0.0  # dropout after each dense layer's 3x3 conv (the reference's --drop)
    num_classes: int = 10
    in_chans: int = 3
    map_kernel_size: int = 3  # the reference's 3x3; the paper's figure shows 1x1


def layers_per_block(config: ABNDenseNetConfig) -> int:
    """n = (depth - 4) / 6; raises ConfigError for an impossible config."""
    c = config
    if c.depth < 10 or (c.depth - 4) % 6:
        raise ConfigError(f"a DenseNet-BC's depth must be 6n + 4 with n >= 1, got {c.depth}")
    if c.growth_rate < 1 or c.num_classes < 1 or c.in_chans < 1:
        raise ConfigError(
            f"growth_rate, num_classes and in_chans must be >= 1, "
            f"got {c.growth_rate}, {c.num_classes}, {c.in_chans}"
        )
    if not 0.0 < c.compression <= 1.0:
        raise ConfigError(f"compression (theta) must lie in (0, 1], got {c.compression}")
    if not 0.0 <= c.drop_rate < 1.0:
        raise ConfigError(f"drop_rate must lie in [0, 1), got {c.drop_rate}")
    return (c.depth - 4) // 6


class DenseLayer(nn.Module):
    """Bottleneck layer: cat(x, drop(conv2(relu(bn2(conv1(relu(bn1(x)))))))), k new channels."""

    def __init__(self, in_chs: int, growth_rate: int, drop_rate: float) -> None:
        super().__init__()
        width = BOTTLENECK_EXPANSION * growth_rate
        self.bn1 = nn.BatchNorm2d(in_chs)
        self.conv1 = nn.Conv2d(in_chs, width, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, growth_rate, 3, padding=1, bias=False)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.act(self.bn1(x)))
        out = self.drop(self.conv2(self.act(self.bn2(out))))  # (B, k, H, W)
        return torch.cat((x, out), dim=1)  # (B, C + k, H, W)


class Transition(nn.Module):
    """BN-ReLU-conv1x1 (compression) then 2x2 average pool: (B, C, H, W) -> (B, C', H / 2, W / 2)."""

    def __init__(self, in_chs: int, out_chs: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_chs)
        self.conv1 = nn.Conv2d(in_chs, out_chs, 1, bias=False)
        self.act = nn.ReLU()
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv1(self.act(self.bn1(x))))


def dense_block(in_chs: int, num_layers: int, growth_rate: int, drop_rate: float) -> nn.Sequential:
    """``num_layers`` dense layers: in_chs -> in_chs + num_layers * growth_rate channels."""
    return nn.Sequential(
        *(DenseLayer(in_chs + i * growth_rate, growth_rate, drop_rate) for i in range(num_layers))
    )


def densenet_backbone(config: ABNDenseNetConfig) -> ABNBackbone:
    """Stem and (dense block + transition) twice; dense block 3 twice, for either branch."""
    n, k, drop = layers_per_block(config), config.growth_rate, config.drop_rate
    channels = 2 * k
    stem = nn.Conv2d(config.in_chans, channels, 3, padding=1, bias=False)
    stages = nn.ModuleList()
    for _ in range(2):  # dense block + transition, twice
        block = dense_block(channels, n, k, drop)
        out_chs = math.floor(config.compression * (channels + n * k))
        stages.append(nn.Sequential(block, Transition(channels + n * k, out_chs)))
        channels = out_chs
    return ABNBackbone(
        stem=stem,
        stages=stages,
        attention_stage=dense_block(channels, n, k, drop),
        perception_stage=dense_block(channels, n, k, drop),
        channels=channels + n * k,
        init=init_resnet_,  # the reference's: convs N(0, 2 / fan_out), BN 1 / 0, linear as torch's
        final_norm=True,  # pre-activation layers: BN-ReLU before the pool
    )


# official DenseNet (models/cifar/densenet.py) -> ours; dense layers and transitions keep their names
OFFICIAL_KEYS: list[KeyRule] = [
    (r"^conv1\.", "stem."),
    (r"^dense([12])\.", lambda m: f"stages.{int(m[1]) - 1}.0."),
    (r"^trans([12])\.", lambda m: f"stages.{int(m[1]) - 1}.1."),
    (r"^att_dense3\.", "attention_stage."),
    (r"^dense3\.", "perception_stage."),
    *OFFICIAL_HEAD_KEYS,
    (r"^bn\.", "norm."),
]  # fc.* keeps its name


@register_model(
    "abn-densenet-bc100-12-cifar",
    config=ABNDenseNetConfig(depth=100, growth_rate=12),
)
@register_model(
    "abn-densenet-bc40-12-cifar",
    config=ABNDenseNetConfig(depth=40, growth_rate=12),
)
class ABNDenseNet(BranchNetwork):
    """DenseNet-BC-ABN: images (B, in_chans, H, W) -> :class:`ABNOutput`."""

    official_keys = OFFICIAL_KEYS

    def __init__(self, config: ABNDenseNetConfig) -> None:
        super().__init__(config, densenet_backbone(config))
