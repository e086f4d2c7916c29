"""Attention Branch Network on a CIFAR ResNeXt (Fukui et al., CVPR 2019, arXiv:1812.10025).

Backbone: ResNeXt-29 of Xie et al. (CVPR 2017, arXiv:1611.05431), CIFAR form: a 3x3
conv to 64 channels + BN + ReLU, then three stages of n = (depth - 2) / 9
bottlenecks (1x1 conv to D - 3x3 grouped conv, ``cardinality`` groups - 1x1 conv to
the stage width, BN and ReLU after each, the last ReLU after the residual sum), with
stage widths 64w, 128w, 256w at strides 1, 2, 2 and D = cardinality * d doubling per
stage. Where width changes, the shortcut is a strided 1x1 conv + BN.

ABN layout, as the reference (machine-perception-robotics-group/attention_branch_network,
``models/cifar/resnext.py``): the attention branch is a stride-1 copy of stage 3 run on
stage 2's output f, followed by :class:`attnlab.layers.branch.AttentionBranchHead`
*without its first BN*: the reference builds ``bn_att`` but its forward never calls it,
so the branch is stage -> 1x1 conv to K -> BN -> ReLU -> ...; ``head.norm`` is an
identity here and the unused ``bn_att`` tensors of a reference state dict map to
nothing. The perception branch runs stage 3 on ``(1 + M) * f``, global average
pool, linear (no BN-ReLU: the blocks end in ReLU). M is at f's resolution (16 x 16
on CIFAR). Weight init as the reference: convs He-normal with fan_out, the linear
weight He-normal with fan_in, every BN scale 1, every bias 0.

Deviations: the reference fixes d = 64 (its D = cardinality * width / widen_factor)
and can only build widen_factor 4 (its classifier is hard-wired to 1024 inputs);
``base_width`` = d and ``widen_factor`` are free here and equal the reference at
(64, 4). The reference accepts ``dropRate`` and ignores it, so there is no dropout
field. Its fixed ``AvgPool2d(16)`` / ``avg_pool2d(8, 1)`` are global means (equal
on 32 x 32 inputs); ``in_chans`` widens the stem; ``map_kernel_size`` (the
reference's 3) selects the map conv; ``attention_override`` replaces M in the
perception branch. The forward is :class:`attnlab.models.abn.branch_network.BranchNetwork`'s;
``OFFICIAL_KEYS`` maps the reference's parameter names to ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.layers.residual import init_resnet_
from attnlab.models._registry import register_model
from attnlab.models.abn.branch_network import OFFICIAL_HEAD_KEYS, ABNBackbone, BranchNetwork, KeyRule

STEM_WIDTH = 64
STAGE_STRIDES = (1, 2, 2)


@dataclass
class ABNResNeXtConfig:
    """ResNeXt-depth (cardinality x base_width d) with an attention branch."""

    depth: int = 29  # 9n + 2: n bottlenecks per stage
    cardinality: int = 8  # groups of the 3x3 conv
    base_width: int = 64  # d: channels per group in stage 1 (doubled per stage); the reference's 64
    widen_factor: int = 4  # stage widths 64w, 128w, 256w; the reference's 4
    num_classes: int = 10
    in_chans: int = 3
    map_kernel_size: int = 3  # the reference's 3x3; the paper's figure shows 1x1


def blocks_per_stage(config: ABNResNeXtConfig) -> int:
    """n = (depth - 2) / 9; raises ConfigError for an impossible config."""
    c = config
    if c.depth < 11 or (c.depth - 2) % 9:
        raise ConfigError(f"a CIFAR ResNeXt's depth must be 9n + 2 with n >= 1, got {c.depth}")
    sizes = {
        "cardinality": c.cardinality,
        "base_width": c.base_width,
        "widen_factor": c.widen_factor,
        "num_classes": c.num_classes,
        "in_chans": c.in_chans,
    }
    for name, value in sizes.items():
        if value < 1:
            raise ConfigError(f"ResNeXt {name} must be >= 1, got {value}")
    return (c.depth - 2) // 9


class ResNeXtBottleneck(nn.Module):
    """relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + skip(x)), conv2 grouped and strided."""

    def __init__(self, in_chs: int, out_chs: int, inner: int, cardinality: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chs, inner, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride=stride, padding=1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv3 = nn.Conv2d(inner, out_chs, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_chs)
        self.act = nn.ReLU()
        # the reference projects only where width changes (with the block's stride); width always
        # changes where it strides, so the stride test here never fires on its layouts
        self.downsample: nn.Sequential | None = None
        if in_chs != out_chs or stride != 1:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False), nn.BatchNorm2d(out_chs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        return self.act(self.bn3(self.conv3(out)) + skip)


def resnext_stage(
    in_chs: int, out_chs: int, inner: int, cardinality: int, num_blocks: int, stride: int
) -> nn.Sequential:
    """Only the first block strides and changes width."""
    return nn.Sequential(
        *(
            ResNeXtBottleneck(
                in_chs if i == 0 else out_chs, out_chs, inner, cardinality, stride if i == 0 else 1
            )
            for i in range(num_blocks)
        )
    )


class ResNeXtStem(nn.Module):
    """3x3 conv to 64 channels + BN + ReLU at full resolution."""

    def __init__(self, in_chans: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chans, STEM_WIDTH, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(STEM_WIDTH)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


def init_resnext_(model: nn.Module) -> None:
    """The reference's init: convs He-normal (fan_out), linear weights He-normal (fan_in),
    BN scale 1, every bias 0."""
    init_resnet_(model)  # the linear layer comes last, as in the reference's single loop
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)


def resnext_backbone(config: ABNResNeXtConfig) -> ABNBackbone:
    """Stem and stages 1-2; stage 3 twice: at stride 1 (attention) and at stride 2 (perception)."""
    n, card = blocks_per_stage(config), config.cardinality
    w1, w2, w3 = (STEM_WIDTH * config.widen_factor * 2**s for s in range(3))
    d1, d2, d3 = (card * config.base_width * 2**s for s in range(3))
    s1, s2, s3 = STAGE_STRIDES
    stages = [resnext_stage(STEM_WIDTH, w1, d1, card, n, s1), resnext_stage(w1, w2, d2, card, n, s2)]
    return ABNBackbone(
        stem=ResNeXtStem(config.in_chans),
        stages=nn.ModuleList(stages),
        attention_stage=resnext_stage(w2, w3, d3, card, n, 1),  # keeps f's resolution for M
        perception_stage=resnext_stage(w2, w3, d3, card, n, s3),
        channels=w3,
        init=init_resnext_,
        head_norm=False,  # the reference defines bn_att but never applies it
    )


# official CifarResNeXt (models/cifar/resnext.py) -> ours; the unused bn_att maps to nothing
OFFICIAL_KEYS: list[KeyRule] = [
    (r"^conv_1_3x3\.", "stem.conv."),
    (r"^bn_1\.", "stem.norm."),
    (r"^stage_([12])\.stage_\1_bottleneck_", lambda m: f"stages.{int(m[1]) - 1}."),
    (r"^stage_att\.stage_att_bottleneck_", "attention_stage."),
    (r"^stage_3\.stage_3_bottleneck_", "perception_stage."),
    (r"^bn_att\.", None),
    *OFFICIAL_HEAD_KEYS,
    (r"^classifier\.", "fc."),
    # inside a bottleneck
    (r"\.conv_reduce\.", ".conv1."),
    (r"\.bn_reduce\.", ".bn1."),
    (r"\.conv_conv\.", ".conv2."),
    (r"\.bn\.", ".bn2."),
    (r"\.conv_expand\.", ".conv3."),
    (r"\.bn_expand\.", ".bn3."),
    (r"\.shortcut\.shortcut_conv\.", ".downsample.0."),
    (r"\.shortcut\.shortcut_bn\.", ".downsample.1."),
]


@register_model(
    "abn-resnext29-8x64d-cifar",
    config=ABNResNeXtConfig(depth=29, cardinality=8, base_width=64, widen_factor=4),
)
@register_model(
    "abn-resnext11-2x64d-cifar",
    config=ABNResNeXtConfig(depth=11, cardinality=2, base_width=64, widen_factor=4),
)
class ABNResNeXt(BranchNetwork):
    """ResNeXt-ABN: images (B, in_chans, H, W) -> :class:`ABNOutput`."""

    official_keys = OFFICIAL_KEYS

    def __init__(self, config: ABNResNeXtConfig) -> None:
        super().__init__(config, resnext_backbone(config))
