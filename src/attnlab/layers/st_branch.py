"""The spatio-temporal attention branch of ST-ABN (seed 001: Spatio-Temporal Attention
Branch Network, built on ABN, Fukui et al. CVPR 2019, arXiv:1812.10025).

From class-wise maps ``a`` (B, K, T, H, W) of the attention branch:
- spatial attention, per frame: 1x1x1 conv K -> 1, BN, sigmoid -> M_s (B, 1, T, H, W);
- temporal attention: 1x1x1 conv K -> c, time folded into channels (B, c*T, H, W), a
  3x3 conv to T channels, ReLU, spatial average -> (B, T), FC-ReLU-FC, sigmoid ->
  M_t (B, T), one weight per frame;
- class logits: 1x1x1 conv K -> K, global average pool (the ABN recipe).
The perception side fuses ``conv(cat((1 + M_s) * f, M_t * f))`` (eqs. 2-4 of the seed).
The seed does not give c or the FC width; they are arguments (defaults documented
in docs/abn.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.layers._recording import RecordsAttention


@dataclass(frozen=True)
class STBranchOutput:
    logits: torch.Tensor  # (B, K) attention-branch class scores
    spatial: torch.Tensor  # (B, 1, T, H, W) in (0, 1)
    temporal: torch.Tensor  # (B, T) in (0, 1)


class SpatialAttention(RecordsAttention):
    """Class maps (B, K, T, H, W) -> M_s (B, 1, T, H, W); records M_s."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(num_classes, 1, 1, bias=False)
        self.norm = nn.BatchNorm3d(1)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        m = torch.sigmoid(self.norm(self.conv(a)))
        self._record(m)
        return m


class TemporalAttention(RecordsAttention):
    """Class maps (B, K, T, H, W) -> M_t (B, T); records M_t."""

    def __init__(self, num_classes: int, num_frames: int, *, channels: int = 8, hidden: int = 64) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.compress = nn.Conv3d(num_classes, channels, 1, bias=False)
        self.frames = nn.Conv2d(channels * num_frames, num_frames, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.Sequential(
            nn.Linear(num_frames, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_frames)
        )

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        B, _, frames, H, W = a.shape
        if frames != self.num_frames:  # the FC layers have one unit per frame
            raise InputError(f"temporal attention was built for {self.num_frames} frames, got {frames}")
        h = self.compress(a)  # (B, c, T, H, W)
        h = h.transpose(1, 2).reshape(B, -1, H, W)  # (B, T*c, H, W): time folded into channels
        h = self.act(self.frames(h)).mean(dim=(2, 3))  # (B, T)
        m = torch.sigmoid(self.fc(h))  # (B, T)
        self._record(m)
        return m


class STAttentionBranchHead(nn.Module):
    """BN -> 1x1x1 conv C -> K -> BN -> ReLU, then class logits, M_s and M_t."""

    def __init__(
        self,
        channels: int,
        num_classes: int,
        num_frames: int,
        *,
        temporal_channels: int = 8,
        temporal_hidden: int = 64,
    ) -> None:
        super().__init__()
        self.norm = nn.BatchNorm3d(channels)
        self.to_classes = nn.Conv3d(channels, num_classes, 1, bias=False)
        self.norm_classes = nn.BatchNorm3d(num_classes)
        self.act = nn.ReLU(inplace=True)
        self.classifier = nn.Conv3d(num_classes, num_classes, 1, bias=False)
        self.spatial = SpatialAttention(num_classes)
        self.temporal = TemporalAttention(
            num_classes, num_frames, channels=temporal_channels, hidden=temporal_hidden
        )

    def forward(self, f: torch.Tensor) -> STBranchOutput:
        a = self.act(self.norm_classes(self.to_classes(self.norm(f))))  # (B, K, T, H, W)
        logits = self.classifier(a).mean(dim=(2, 3, 4))  # (B, K)
        return STBranchOutput(logits=logits, spatial=self.spatial(a), temporal=self.temporal(a))


class STAttentionFusion(nn.Module):
    """f' = conv(cat((1 + M_s) * f, M_t * f)): 2C -> C with a 1x1x1 conv, BN and ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(2 * channels, channels, 1, bias=False)
        self.norm = nn.BatchNorm3d(channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, f: torch.Tensor, spatial: torch.Tensor, temporal: torch.Tensor) -> torch.Tensor:
        if spatial.shape[2:] != f.shape[2:] or temporal.shape != (f.shape[0], f.shape[2]):
            shapes = f"{tuple(spatial.shape)}, {tuple(temporal.shape)}"
            raise InputError(f"attention shapes {shapes} do not fit features {tuple(f.shape)}")
        f_s = f + f * spatial  # (1 + M_s) * f, (B, C, T, H, W)
        f_t = f * temporal[:, None, :, None, None]  # M_t * f
        return self.act(self.norm(self.conv(torch.cat([f_s, f_t], dim=1))))
