"""The small CNN classifier of the test-time-augmentation thesis (seed 001, Table 1: "CNN (24.3k)",
5 layers, chosen because it can hardly absorb the gap between domains).

The thesis gives only the depth and the parameter count; this is a 5-layer network of that size:
four 3x3 convolutions (16, 32, 32, 32 channels) each with batch norm and ReLU, 2x2 max-pooling
after the first three, global average pooling and one linear layer: 24,138 parameters for 3
input channels and 10 classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.models._registry import register_model
from attnlab.models.outputs import ClassifierOutput


@dataclass
class SmallCNNConfig:
    in_chans: int = 3
    num_classes: int = 10
    widths: tuple[int, ...] = (16, 32, 32, 32)
    pooled: int = 3  # the first ``pooled`` convolutions are followed by 2x2 max-pooling


def _block(c_in: int, c_out: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(2)) if pool else nn.Sequential(*layers)


@register_model("cnn5-digits", config=SmallCNNConfig())
class SmallCNN(nn.Module):
    """Images (B, in_chans, H, W) -> :class:`ClassifierOutput` (features: the pooled last conv)."""

    def __init__(self, config: SmallCNNConfig) -> None:
        super().__init__()
        sizes_ok = min(config.in_chans, config.num_classes, *config.widths) >= 1
        if not sizes_ok or not 0 <= config.pooled <= len(config.widths):
            raise InputError(f"cnn5 needs positive sizes and 0 <= pooled <= len(widths), got {config}")
        self.config = config
        widths = (config.in_chans, *config.widths)
        self.features = nn.Sequential(
            *(_block(widths[i], widths[i + 1], i < config.pooled) for i in range(len(config.widths)))
        )
        self.fc = nn.Linear(widths[-1], config.num_classes)

    def forward(self, images: torch.Tensor) -> ClassifierOutput:
        if images.dim() != 4 or images.shape[1] != self.config.in_chans or not images.is_floating_point():
            raise InputError(
                f"cnn5 classifies (B, {self.config.in_chans}, H, W) float images, "
                f"got {tuple(images.shape)} {images.dtype}"
            )
        features = self.features(images).mean(dim=(2, 3))  # (B, C)
        return ClassifierOutput(logits=self.fc(features), features=features)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        """Valid inputs for ``forward`` (used by the registry-wide tests)."""
        return {"images": torch.randn(batch_size, self.config.in_chans, 32, 32)}
