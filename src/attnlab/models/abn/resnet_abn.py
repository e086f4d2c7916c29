"""Attention Branch Network on ResNets (Fukui et al., CVPR 2019, arXiv:1812.10025).

A ResNet's stages up to the second-to-last give features f. The attention branch
is a copy of the last stage run at stride 1 on f, followed by the ABN head
(:class:`attnlab.layers.branch.AttentionBranchHead`): class logits from a
response map and a one-channel map M in (0, 1) at f's resolution. The perception
branch runs the real last stage (stride 2) on ``(1 + M) * f`` and classifies with
global average pooling and a linear layer. Both branches are trained with
cross-entropy (:func:`attnlab.objectives.abn.abn_loss`).

Reference implementation: machine-perception-robotics-group/attention_branch_network
(``models/cifar/resnet.py``, ``models/imagenet/resnet.py``); this follows its layout,
which differs from the paper's figure in places (3x3 map conv, BN after the last
stage of the branch, projection shortcuts, bottlenecks with (depth - 2) / 6 blocks
per stage for CIFAR depth >= 44). :func:`attnlab.runs.official.load_official_abn_cifar`
loads its CIFAR state dicts (``OFFICIAL_KEYS`` maps their names). The forward is
:class:`attnlab.models.abn.branch_network.BranchNetwork`'s. Deviations: the fixed
``AvgPool2d(16 | 14 | 8 | 7)`` are global means (the same on the sizes they were
written for); ``in_chans`` widens the stem; ``attention_override`` lets an edited map
M' replace M in the perception branch (Mitsuhara et al., arXiv:1905.04929).
"""

from __future__ import annotations

from dataclasses import dataclass

from attnlab.layers.residual import (
    ResNetConfig,
    ResNetStem,
    StageSpec,
    init_resnet_,
    make_stage,
    make_stages,
    official_cifar_block,
    stage_out_channels,
    stage_specs,
)
from attnlab.models._registry import register_model
from attnlab.models.abn.branch_network import OFFICIAL_HEAD_KEYS, ABNBackbone, BranchNetwork, KeyRule


@dataclass
class ABNConfig(ResNetConfig):
    """A ResNet-ABN; the ResNet fields as :class:`ResNetConfig`, plus the head's map conv."""

    map_kernel_size: int = 3  # the reference's 3x3; the paper's figure shows 1x1


def resnet_backbone(config: ABNConfig) -> ABNBackbone:
    """Stem and all stages but the last; the last twice: at stride 1 (attention) and as built."""
    *shared, last = stage_specs(config)
    stem = ResNetStem(config.style, config.in_chans)
    stages, channels = make_stages(config, shared, stem.out_chs)
    branch_spec = StageSpec(last.width, last.num_blocks, stride=1)  # keeps f's resolution for M
    return ABNBackbone(
        stem=stem,
        stages=stages,
        attention_stage=make_stage(config.block, channels, branch_spec, shortcut=config.shortcut),
        perception_stage=make_stage(config.block, channels, last, shortcut=config.shortcut),
        channels=stage_out_channels(config.block, last),
        init=init_resnet_,
        example_size=32 if config.style == "cifar" else 64,  # ImageNet nets take any size >= 32
    )


# official CIFAR ResNet-ABN (models/cifar/resnet.py) -> ours; block internals keep their names
OFFICIAL_KEYS: list[KeyRule] = [
    (r"^conv1\.", "stem.conv."),
    (r"^bn1\.", "stem.norm."),
    (r"^layer([12])\.", lambda m: f"stages.{int(m[1]) - 1}."),
    (r"^att_layer3\.", "attention_stage."),
    (r"^layer3\.", "perception_stage."),
    *OFFICIAL_HEAD_KEYS,
]  # fc.* keeps its name


def _cifar(depth: int) -> ABNConfig:
    return ABNConfig(depth=depth, block=official_cifar_block(depth))


@register_model("abn-resnet20-cifar", config=_cifar(20))
@register_model("abn-resnet56-cifar", config=_cifar(56))
@register_model("abn-resnet110-cifar", config=_cifar(110))
@register_model("abn-resnet18", config=ABNConfig(style="imagenet", depth=18, num_classes=1000))
@register_model(
    "abn-resnet50",
    config=ABNConfig(style="imagenet", depth=50, block="bottleneck", num_classes=1000),
)
@register_model(
    "abn-resnet101",
    config=ABNConfig(style="imagenet", depth=101, block="bottleneck", num_classes=1000),
)
class AttentionBranchNetwork(BranchNetwork):
    """ResNet-ABN: images (B, in_chans, H, W) -> :class:`ABNOutput`."""

    official_keys = OFFICIAL_KEYS

    def __init__(self, config: ABNConfig) -> None:
        super().__init__(config, resnet_backbone(config))
