"""Plain ResNet classifiers (He et al. CVPR 2016, arXiv:1512.03385): the baselines of ABN.

CIFAR-style (16-32-64 widths, 6n+2 layers) and ImageNet-style (ResNet-18/50)
presets; the building blocks live in :mod:`attnlab.layers.residual`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.layers.residual import (
    ResNetConfig,
    ResNetStem,
    check_images,
    example_images,
    init_resnet_,
    make_stages,
    stage_specs,
)
from attnlab.models._registry import register_model


@dataclass
class ResNetOutput:
    logits: torch.Tensor  # (B, num_classes)
    features: torch.Tensor  # (B, C), globally pooled output of the last stage


@register_model(
    "resnet20-cifar",
    config=ResNetConfig(depth=20, shortcut="zero_pad"),
)
@register_model(
    "resnet56-cifar",
    config=ResNetConfig(depth=56, shortcut="zero_pad"),
)
@register_model(
    "resnet110-cifar",
    config=ResNetConfig(depth=110, shortcut="zero_pad"),
)
@register_model(
    "resnet18",
    config=ResNetConfig(style="imagenet", depth=18, num_classes=1000),
)
@register_model(
    "resnet50",
    config=ResNetConfig(style="imagenet", depth=50, block="bottleneck", num_classes=1000),
)
@register_model(
    "resnet101",
    config=ResNetConfig(style="imagenet", depth=101, block="bottleneck", num_classes=1000),
)
class ResNet(nn.Module):
    """ResNet classifier: images (B, in_chans, H, W) -> :class:`ResNetOutput`."""

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        self.config = config
        specs = stage_specs(config)
        self.stem = ResNetStem(config.style, config.in_chans)
        self.stages, channels = make_stages(config, specs, self.stem.out_chs)
        self.fc = nn.Linear(channels, config.num_classes)
        init_resnet_(self)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        """Valid inputs for ``forward`` (used by the registry-wide tests)."""
        return {"images": example_images(self.config, batch_size)}

    def forward(self, images: torch.Tensor) -> ResNetOutput:
        check_images(images, self.config.in_chans)
        x = self.stem(images)
        for stage in self.stages:
            x = stage(x)  # (B, C, H / r, W / r)
        features = x.mean(dim=(2, 3))  # (B, C)
        return ResNetOutput(logits=self.fc(features), features=features)
