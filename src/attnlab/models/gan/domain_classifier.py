"""A small CNN classifier of the GAN's own domain, for IS-like and FID-like scores without Inception.

Inception Score (Salimans et al. 2016, arXiv:1606.03498) and FID (Heusel et al. 2017,
arXiv:1706.08500; github.com/bioinf-jku/TTUR) read an ImageNet Inception-v3's softmax and
pool features. Nothing is downloaded here, so a classifier trained on the dataset itself
(Fashion-MNIST) plays Inception's part: its logits give the IS-like score, its penultimate
features the FID-like one (:mod:`attnlab.metrics.gan_scores`). The numbers are not comparable
with published IS/FID. Three [conv 3x3, BatchNorm, ReLU, conv 3x3 stride 2] stages (32, 64, 128
channels), global average pooling to 128 features, one linear layer to the classes; any input
size works.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.models._registry import register_model
from attnlab.models.outputs import ClassifierOutput


@dataclass
class DomainClassifierConfig:
    channels: int = 1
    num_classes: int = 10
    width: int = 32  # channels of the first stage; doubled at each of the 3 stages


def _stage(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, 2, 1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


@register_model("gan-domain-classifier", config=DomainClassifierConfig())
class DomainClassifier(nn.Module):
    """Images (B, channels, H, W) in [-1, 1] -> :class:`ClassifierOutput` (features (B, 4 * width))."""

    def __init__(self, config: DomainClassifierConfig) -> None:
        super().__init__()
        if min(config.channels, config.num_classes, config.width) < 1:
            raise ConfigError(f"gan-domain-classifier needs positive sizes, got {config}")
        self.config = config
        w = config.width
        self.stages = nn.Sequential(_stage(config.channels, w), _stage(w, 2 * w), _stage(2 * w, 4 * w))
        self.head = nn.Linear(4 * w, config.num_classes)

    def forward(self, images: torch.Tensor) -> ClassifierOutput:
        if images.dim() != 4 or images.shape[1] != self.config.channels:
            raise InputError(f"images must be (B, {self.config.channels}, H, W), got {tuple(images.shape)}")
        features = self.stages(images).mean(dim=(2, 3))  # (B, 4 * width)
        return ClassifierOutput(logits=self.head(features), features=features)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        return {"images": torch.randn(batch_size, self.config.channels, 32, 32)}
