"""Attention Branch Network pieces (Fukui et al., CVPR 2019, arXiv:1812.10025).

The attention branch turns features of its residual stage into class scores and a
one-channel attention map M; the attention mechanism re-weights the perception
branch's features as ``g'(x) = (1 + M(x)) * g(x)`` (Eq. 2). Reference
implementation: machine-perception-robotics-group/attention_branch_network
(PyTorch), whose layout this follows; parameter names map from it as
``bn_att -> norm``, ``att_conv -> to_classes``, ``bn_att2 -> norm_classes``,
``att_conv2 -> class_conv``, ``att_conv3 -> map_conv``, ``bn_att3 -> map_norm``.

Deviations from the paper, following the reference: the map conv is 3x3 (the
paper's figure shows 1x1; ``map_kernel_size`` selects), and no conv has a bias.
The reference's fixed ``AvgPool2d(14)`` (16 for CIFAR) is a global average pool
here, which is the same on its input sizes and works on any other.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.layers._recording import RecordsAttention


def apply_attention(features: torch.Tensor, attention_map: torch.Tensor) -> torch.Tensor:
    """``(1 + M) * f`` for f (B, C, H, W) and M (B, 1, H, W), or f (B, C, T, H, W) and M (B, 1, T, H, W)."""
    if features.dim() not in (4, 5) or not features.is_floating_point():
        raise InputError(
            f"features must be floating (B, C, H, W) or (B, C, T, H, W), "
            f"got {features.dtype} {tuple(features.shape)}"
        )
    expected = (features.shape[0], 1, *features.shape[2:])
    if tuple(attention_map.shape) != expected or not attention_map.is_floating_point():
        raise InputError(
            f"attention_map must be floating {expected} to match features {tuple(features.shape)}, "
            f"got {attention_map.dtype} {tuple(attention_map.shape)}"
        )
    # f + f * M in one kernel; the reference computes x * att + x in this order
    return torch.addcmul(features, features, attention_map)


class AttentionMechanism(nn.Module):
    """Module form of :func:`apply_attention`: (features, M) -> (1 + M) * features."""

    def forward(self, features: torch.Tensor, attention_map: torch.Tensor) -> torch.Tensor:
        return apply_attention(features, attention_map)


@dataclass(frozen=True)
class BranchOutput:
    """What the attention branch produces."""

    logits: torch.Tensor  # (B, num_classes), trained with cross-entropy like the perception branch
    attention: torch.Tensor  # (B, 1, H, W) in (0, 1), the map M for apply_attention


class AttentionBranchHead(RecordsAttention):
    """The attention branch after its residual stage: (B, channels, H, W) -> :class:`BranchOutput`.

    ``norm -> 1x1 conv to K = num_classes -> norm -> act`` gives K class response maps;
    (a) ``1x1 conv K->K -> global average pool`` gives the logits (B, K);
    (b) ``map_kernel_size`` conv K->1 (same size) ``-> norm -> sigmoid`` gives M (B, 1, H, W).
    Records M as (B, 1, H, W).
    """

    def __init__(
        self,
        channels: int,
        num_classes: int,
        *,
        map_kernel_size: int = 3,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        if channels < 1 or num_classes < 1:
            raise InputError(f"channels and num_classes must be >= 1, got {channels}, {num_classes}")
        if map_kernel_size < 1 or map_kernel_size % 2 == 0:
            raise InputError(f"map_kernel_size must be odd (to keep H, W), got {map_kernel_size}")
        self.channels = channels
        self.num_classes = num_classes
        self.norm = norm_layer(channels)
        self.to_classes = nn.Conv2d(channels, num_classes, 1, bias=False)
        self.norm_classes = norm_layer(num_classes)
        self.act = act_layer()
        self.class_conv = nn.Conv2d(num_classes, num_classes, 1, bias=False)
        self.map_conv = nn.Conv2d(num_classes, 1, map_kernel_size, padding=map_kernel_size // 2, bias=False)
        self.map_norm = norm_layer(1)

    def forward(self, features: torch.Tensor) -> BranchOutput:
        if features.dim() != 4 or features.shape[1] != self.channels or not features.is_floating_point():
            raise InputError(
                f"features must be floating (B, {self.channels}, H, W), "
                f"got {features.dtype} {tuple(features.shape)}"
            )
        responses = self.act(self.norm_classes(self.to_classes(self.norm(features))))  # (B, K, H, W)
        attention = torch.sigmoid(self.map_norm(self.map_conv(responses)))  # (B, 1, H, W)
        self._record(attention)
        logits = self.class_conv(responses).mean(dim=(2, 3))  # (B, K)
        return BranchOutput(logits=logits, attention=attention)


def check_attention_override(override: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """An edited map M' for features (B, C, h, w): floating (B, 1, h, w) in [0, 1], cast to their dtype."""
    expected = (features.shape[0], 1, *features.shape[2:])
    if tuple(override.shape) != expected or not override.is_floating_point():
        raise InputError(
            f"attention_override must be floating {expected} (the attention map's shape), "
            f"got {override.dtype} {tuple(override.shape)}"
        )
    override = override.to(features)
    # one check for NaN and range: NaN fails both comparisons
    if not bool(((override >= 0) & (override <= 1)).all()):
        raise InputError("attention_override values must lie in [0, 1] (M is a sigmoid output)")
    return override
