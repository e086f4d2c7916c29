"""A frame-level CNN encoder: the lower-bound baseline for Aloe.

Aloe's ablations (Ding et al., NeurIPS 2021, arXiv:2012.08508) ask how much the
object-level input matters by giving the same transformer one embedding per frame
instead of one per object. :class:`FrameEncoder` makes such tokens: a small conv net
runs on every frame (all B * T frames in one batch) and a linear layer maps the
flattened final feature map (which keeps where things are) to one token, so a video
(B, T, 3, S, S) becomes (B, T, 1, out_dim), the shape of slot latents with K = 1.
Train it end to end under Aloe with ``object_dim = out_dim``::

    tokens = encoder(video)            # (B, T, 1, D)
    out = aloe(tokens, question)

Each conv is 4x4, stride 2, padding 1 (halves H and W), followed by ReLU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.models._checks import check_video


@dataclass
class FrameEncoderConfig:
    image_size: int = 64  # S; must be divisible by 2 ** len(channels)
    channels: tuple[int, ...] = (32, 64, 64)  # one stride-2 conv per entry
    out_dim: int = 16  # D of the token (Aloe's object_dim)


def check_frame_encoder_config(c: FrameEncoderConfig) -> None:
    if not c.channels or any(not isinstance(ch, int) or ch < 1 for ch in c.channels):
        raise ConfigError(f"FrameEncoder config: channels must be positive ints, got {c.channels!r}")
    if c.out_dim < 1:
        raise ConfigError(f"FrameEncoder config: out_dim must be >= 1, got {c.out_dim}")
    factor = 2 ** len(c.channels)
    if c.image_size < factor or c.image_size % factor:
        raise ConfigError(
            f"FrameEncoder config: image_size={c.image_size} must be a multiple of {factor} "
            f"(2 ** {len(c.channels)} stride-2 convs)"
        )


class FrameEncoder(nn.Module):
    """video (B, T, 3, S, S) in [0, 1] -> one token per frame (B, T, 1, out_dim)."""

    def __init__(self, config: FrameEncoderConfig) -> None:
        super().__init__()
        check_frame_encoder_config(config)
        self.config = c = config
        layers: list[nn.Module] = []
        in_chs = 3
        for out_chs in c.channels:
            layers += [nn.Conv2d(in_chs, out_chs, 4, stride=2, padding=1), nn.ReLU()]
            in_chs = out_chs
        self.convs = nn.Sequential(*layers)
        side = c.image_size // 2 ** len(c.channels)
        self.proj = nn.Linear(in_chs * side * side, c.out_dim)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        return {"video": torch.rand(batch_size, 3, 3, self.config.image_size, self.config.image_size)}

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        check_video(video, self.config.image_size)
        B, T = video.shape[:2]
        features = self.convs(video.flatten(0, 1))  # (B * T, C, s, s)
        tokens = self.proj(features.flatten(1))  # (B * T, out_dim)
        return tokens.view(B, T, 1, -1)  # (B, T, 1, out_dim)
