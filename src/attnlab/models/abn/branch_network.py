"""The Attention Branch Network over any CNN backbone (Fukui et al., CVPR 2019, arXiv:1812.10025).

A backbone builder (``resnet_abn``, ``wrn_abn``, ``densenet_abn``, ``resnext_abn``)
splits its CNN into an :class:`ABNBackbone`; :class:`BranchNetwork` adds the rest and
owns the one forward:

    f = stages(stem(images))                    feature extractor, (B, C, h, w)
    logits_att, M = head(attention_stage(f))    attention branch, M (B, 1, h, w) in (0, 1)
    x = perception_stage((1 + M) * f)           perception branch
    logits = fc(mean_hw(act(norm(x))))          norm / act only for pre-activation backbones

``attention_override`` (Mitsuhara et al., arXiv:1905.04929, "Embedding human knowledge
into deep neural network via attention map") replaces M in the perception branch by an
edited map M', while ``attention`` stays the branch's own M so the map loss
``||M - M'||`` can be formed.

Parameter names follow the official code's modules one to one (``OFFICIAL_HEAD_KEYS``
for the head's, each backbone's ``OFFICIAL_KEYS`` for the rest), so that
:func:`attnlab.runs.official.load_official_abn` loads its checkpoints.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

import torch
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.layers.branch import AttentionBranchHead, apply_attention, check_attention_override
from attnlab.layers.residual import check_images
from attnlab.models.outputs import ABNOutput

# (regex, replacement) applied in order to an official key (attnlab.runs.convert); None drops it
KeyRule = tuple[str, str | Callable[[re.Match[str]], str] | None]

# the official head's modules (layers/branch.py's docstring), the same in every backbone
OFFICIAL_HEAD_KEYS: list[KeyRule] = [
    (r"^bn_att\.", "head.norm."),
    (r"^att_conv\.", "head.to_classes."),
    (r"^bn_att2\.", "head.norm_classes."),
    (r"^att_conv2\.", "head.class_conv."),
    (r"^att_conv3\.", "head.map_conv."),
    (r"^bn_att3\.", "head.map_norm."),
]


class BranchConfig(Protocol):
    """The fields every ABN config has beside its backbone's."""

    num_classes: int
    in_chans: int
    map_kernel_size: int  # the reference's 3x3; the paper's figure shows 1x1


@dataclass
class ABNBackbone:
    """A CNN split for ABN; the builders make it, :class:`BranchNetwork` runs it."""

    stem: nn.Module  # images (B, in_chans, H, W) -> (B, C0, H', W')
    stages: nn.ModuleList  # -> f (B, C, h, w): the rest of the feature extractor
    attention_stage: nn.Module  # f -> (B, channels, h, w): keeps f's resolution for M
    perception_stage: nn.Module  # (1 + M) f -> (B, channels, h', w')
    channels: int
    init: Callable[[nn.Module], None]  # the reference's weight init, run on the whole network
    final_norm: bool = False  # BN-ReLU after the perception stage (pre-activation backbones)
    head_norm: bool = True  # False: the reference builds the head's first BN but never applies it
    example_size: int = 32  # H = W of example_inputs


class BranchNetwork(nn.Module):
    """ABN: images (B, in_chans, H, W) -> :class:`ABNOutput` (the module docstring's forward)."""

    official_keys: ClassVar[list[KeyRule]] = []  # each backbone's class sets its own

    def __init__(self, config: BranchConfig, backbone: ABNBackbone) -> None:
        super().__init__()
        self.config = config
        self.example_size = backbone.example_size
        self.stem = backbone.stem
        self.stages = backbone.stages
        self.attention_stage = backbone.attention_stage
        self.head = _head(config, backbone)
        self.perception_stage = backbone.perception_stage
        # None rather than nn.Identity: a direct child that runs would count as the CAM layer
        self.norm = nn.BatchNorm2d(backbone.channels) if backbone.final_norm else None
        self.act = nn.ReLU() if backbone.final_norm else None
        self.fc = nn.Linear(backbone.channels, config.num_classes)
        backbone.init(self)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        """Valid inputs for ``forward`` (used by the registry-wide tests)."""
        size = self.example_size
        return {"images": torch.randn(batch_size, self.config.in_chans, size, size)}

    def forward(self, images: torch.Tensor, *, attention_override: torch.Tensor | None = None) -> ABNOutput:
        """``attention_override`` (B, 1, h, w) in [0, 1], h, w as ``attention``: replaces M for the
        perception branch (a human-edited map); the attention branch still runs for att_logits."""
        check_images(images, self.config.in_chans)
        f = self.stem(images)
        for stage in self.stages:
            f = stage(f)  # (B, C, h, w)
        branch = self.head(self.attention_stage(f))  # logits (B, K), attention (B, 1, h, w)
        m = branch.attention
        if attention_override is not None:
            m = check_attention_override(attention_override, f)
        x = self.perception_stage(apply_attention(f, m))  # (B, C', h', w')
        if self.norm is not None and self.act is not None:
            x = self.act(self.norm(x))
        logits = self.fc(x.mean(dim=(2, 3)))  # (B, K)
        return ABNOutput(att_logits=branch.logits, logits=logits, attention=branch.attention)


def _head(config: BranchConfig, backbone: ABNBackbone) -> AttentionBranchHead:
    try:
        head = AttentionBranchHead(
            backbone.channels, config.num_classes, map_kernel_size=config.map_kernel_size
        )
    except InputError as err:
        raise ConfigError(str(err)) from None
    if not backbone.head_norm:
        head.norm = nn.Identity()
    return head
