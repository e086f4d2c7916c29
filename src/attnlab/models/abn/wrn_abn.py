"""Attention Branch Network on a CIFAR Wide ResNet (Fukui et al., CVPR 2019, arXiv:1812.10025).

Backbone: WRN-d-k of Zagoruyko & Komodakis (BMVC 2016, arXiv:1605.07146): a 3x3 conv
to 16 channels, then three stages of n = (d - 4) / 6 pre-activation basic blocks
(BN-ReLU-conv3x3 [-dropout] -BN-ReLU-conv3x3) of widths 16k, 32k, 64k at strides
1, 2, 2. Where width or stride changes, the shortcut is a 1x1 conv applied to the
block's pre-activated input.

ABN layout, as the reference (machine-perception-robotics-group/attention_branch_network,
``models/cifar/wrn.py``): the attention branch is a stride-1 copy of stage 3 run on
stage 2's output f, followed by :class:`attnlab.layers.branch.AttentionBranchHead`
(its BN reads the stage's raw pre-activation sum). The perception branch runs stage 3
on ``(1 + M) * f``, then BN-ReLU, global average pool and a linear layer. M is at
f's resolution (16 x 16 on CIFAR). Weight init as the reference: convs
N(0, 2 / (k * k * out_channels)), BN scale 1 and shift 0, linear bias 0.

Deviations: the reference's fixed ``AvgPool2d(16)`` / ``avg_pool2d(8)`` are global
means (equal on 32 x 32 inputs, valid on any size); ``in_chans`` widens the stem;
``map_kernel_size`` (the reference's 3) selects the map conv; ``attention_override``
replaces M in the perception branch. The forward is
:class:`attnlab.models.abn.branch_network.BranchNetwork`'s; ``OFFICIAL_KEYS`` maps the
reference's parameter names to ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.layers.residual import init_resnet_
from attnlab.models._registry import register_model
from attnlab.models.abn.branch_network import OFFICIAL_HEAD_KEYS, ABNBackbone, BranchNetwork, KeyRule

STEM_WIDTH = 16
STAGE_WIDTHS = (16, 32, 64)  # times widen_factor
STAGE_STRIDES = (1, 2, 2)


@dataclass
class ABNWideResNetConfig:
    """WRN-depth-widen_factor with an attention branch."""

    depth: int = 28  # 6n + 4: n blocks per stage
    widen_factor: int = 10
    drop_rate: float = 0.0  # dropout between a block's convs (the reference's --drop)
    num_classes: int = 10
    in_chans: int = 3
    map_kernel_size: int = 3  # the reference's 3x3; the paper's figure shows 1x1


def blocks_per_stage(config: ABNWideResNetConfig) -> int:
    """n = (depth - 4) / 6; raises ConfigError for an impossible config."""
    c = config
    if c.depth < 10 or (c.depth - 4) % 6:
        raise ConfigError(f"a Wide ResNet's depth must be 6n + 4 with n >= 1, got {c.depth}")
    if c.widen_factor < 1 or c.num_classes < 1 or c.in_chans < 1:
        raise ConfigError(
            f"widen_factor, num_classes and in_chans must be >= 1, "
            f"got {c.widen_factor}, {c.num_classes}, {c.in_chans}"
        )
    if not 0.0 <= c.drop_rate < 1.0:
        raise ConfigError(f"drop_rate must lie in [0, 1), got {c.drop_rate}")
    return (c.depth - 4) // 6


class WideBasicBlock(nn.Module):
    """Pre-activation block: conv2(drop(relu(bn2(conv1(relu(bn1(x))))))) + skip.

    The skip is x itself, or a 1x1 conv of relu(bn1(x)) where width or stride change.
    """

    def __init__(self, in_chs: int, out_chs: int, *, stride: int = 1, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_chs)
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, padding=1, bias=False)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        needs_projection = in_chs != out_chs or stride != 1
        self.shortcut = nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False) if needs_projection else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(pre)
        out = self.drop(self.act(self.bn2(self.conv1(pre))))
        return self.conv2(out) + skip


def wide_stage(in_chs: int, out_chs: int, num_blocks: int, stride: int, drop_rate: float) -> nn.Sequential:
    """Only the first block strides and changes width."""
    return nn.Sequential(
        *(
            WideBasicBlock(
                in_chs if i == 0 else out_chs, out_chs, stride=stride if i == 0 else 1, drop_rate=drop_rate
            )
            for i in range(num_blocks)
        )
    )


def init_wrn_(model: nn.Module) -> None:
    """The reference's init: convs N(0, 2 / fan_out), BN 1 / 0, linear bias 0 (weight left as torch's)."""
    init_resnet_(model)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)


def wide_resnet_backbone(config: ABNWideResNetConfig) -> ABNBackbone:
    """Stem and stages 1-2; stage 3 twice: at stride 1 (attention) and at stride 2 (perception)."""
    n, drop = blocks_per_stage(config), config.drop_rate
    w1, w2, w3 = (w * config.widen_factor for w in STAGE_WIDTHS)
    s1, s2, s3 = STAGE_STRIDES
    return ABNBackbone(
        stem=nn.Conv2d(config.in_chans, STEM_WIDTH, 3, padding=1, bias=False),
        stages=nn.ModuleList([wide_stage(STEM_WIDTH, w1, n, s1, drop), wide_stage(w1, w2, n, s2, drop)]),
        attention_stage=wide_stage(w2, w3, n, 1, drop),  # keeps f's resolution for M
        perception_stage=wide_stage(w2, w3, n, s3, drop),
        channels=w3,
        init=init_wrn_,
        final_norm=True,  # pre-activation blocks: BN-ReLU before the pool
    )


# official WideResNet (models/cifar/wrn.py) -> ours; inside a block only convShortcut is renamed
OFFICIAL_KEYS: list[KeyRule] = [
    (r"^conv1\.", "stem."),
    (r"^block([12])\.layer\.", lambda m: f"stages.{int(m[1]) - 1}."),
    (r"^att_block3\.layer\.", "attention_stage."),
    (r"^block3\.layer\.", "perception_stage."),
    *OFFICIAL_HEAD_KEYS,
    (r"^bn1\.", "norm."),
    (r"\.convShortcut\.", ".shortcut."),
]  # fc.* keeps its name


@register_model(
    "abn-wrn28-10-cifar",
    config=ABNWideResNetConfig(depth=28, widen_factor=10, drop_rate=0.3),
)
@register_model(
    "abn-wrn16-2-cifar",
    config=ABNWideResNetConfig(depth=16, widen_factor=2),
)
class ABNWideResNet(BranchNetwork):
    """WRN-ABN: images (B, in_chans, H, W) -> :class:`ABNOutput`."""

    official_keys = OFFICIAL_KEYS

    def __init__(self, config: ABNWideResNetConfig) -> None:
        super().__init__(config, wide_resnet_backbone(config))
