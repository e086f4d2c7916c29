"""3D ResNet video classifiers (Hara et al. CVPR 2018, arXiv:1711.09577): the ST-ABN baseline.

Stem conv (1, 7, 7) stride (1, 2, 2) (+ max-pool), four residual stages that halve
space and keep time, global average pool, linear head. Input (B, C, T, H, W).
Deviation from Hara et al.: no temporal striding anywhere, so features stay
aligned with the input frames (the seed's ST-ABN weighs every frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.layers.residual3d import resnet3d_trunk
from attnlab.models._registry import register_model
from attnlab.models.outputs import ClassifierOutput


@dataclass
class ResNet3dConfig:
    num_classes: int = 174
    depth: int = 50
    width: int = 64
    in_chans: int = 3
    stem_pool: bool = True
    dropout: float = 0.0


def check_video(video: torch.Tensor, in_chans: int) -> None:
    if video.dim() != 5 or video.shape[1] != in_chans or not video.is_floating_point():
        raise InputError(
            f"video must be floating (B, {in_chans}, T, H, W), got {video.dtype} {tuple(video.shape)}"
        )


@register_model("r3d-50", config=ResNet3dConfig())
@register_model("r3d-18", config=ResNet3dConfig(depth=18))
@register_model(
    "r3d-tiny",
    config=ResNet3dConfig(num_classes=9, depth=10, width=16, stem_pool=False),
)
class ResNet3d(nn.Module):
    """Video (B, C, T, H, W) -> :class:`ClassifierOutput`."""

    def __init__(self, config: ResNet3dConfig) -> None:
        super().__init__()
        self.config = c = config
        self.stem, self.stages, widths = resnet3d_trunk(
            c.depth, width=c.width, in_channels=c.in_chans, stem_pool=c.stem_pool
        )
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Linear(widths[-1], c.num_classes)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        return {"video": torch.rand(batch_size, self.config.in_chans, 4, 32, 32)}

    def forward(self, video: torch.Tensor) -> ClassifierOutput:
        check_video(video, self.config.in_chans)
        h = self.stem(video)
        for stage in self.stages:
            h = stage(h)
        features = h.mean(dim=(2, 3, 4))  # (B, C)
        return ClassifierOutput(logits=self.head(self.dropout(features)), features=features)
