"""StarGAN v2's residual blocks (Choi et al. 2020, arXiv:1912.01865, Appendix A).

Reference: clovaai/stargan-v2 ``core/model.py`` (``ResBlk``, ``AdaIN``, ``AdainResBlk``); the
parameter names are the reference's, so its checkpoints load by name.

* :class:`ResBlk`, pre-activation: ``(shortcut(x) + residual(x)) / sqrt(2)`` keeps unit variance;
  the residual is [IN] -> LeakyReLU(0.2) -> conv3x3 -> [avg-pool] -> [IN] -> LeakyReLU -> conv3x3,
  the shortcut a bias-free 1x1 conv when the width changes, then [avg-pool]. Instance norm (affine)
  only in the generator's encoder.
* :class:`AdaIN`: ``(1 + gamma(s)) * IN(x) + beta(s)`` with gamma, beta from one linear layer of
  the style code: the "1 +" starts every block near identity.
* :class:`AdainResBlk`: the decoder's block, AdaIN in place of IN, nearest-neighbour upsampling
  before the first conv (and on the shortcut).

Deviation: the reference's high-pass branch (``w_hpf > 0``, for CelebA-HQ faces with a pretrained
landmark network) is not implemented; with ``w_hpf = 0`` (AFHQ, and every setting here) the
decoder block adds its shortcut, as here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SLOPE = 0.2  # LeakyReLU's negative slope everywhere in StarGAN v2


class ResBlk(nn.Module):
    """(B, dim_in, H, W) -> (B, dim_out, H/2 or H, W/2 or W)."""

    def __init__(
        self, dim_in: int, dim_out: int, *, normalize: bool = False, downsample: bool = False
    ) -> None:
        super().__init__()
        self.normalize, self.downsample = normalize, downsample
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        if normalize:
            self.norm1 = nn.InstanceNorm2d(dim_in, affine=True)
            self.norm2 = nn.InstanceNorm2d(dim_in, affine=True)
        self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False) if dim_in != dim_out else None

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv1x1 is not None:
            x = self.conv1x1(x)
        return F.avg_pool2d(x, 2) if self.downsample else x

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = self.norm1(x)
        x = self.conv1(F.leaky_relu(x, SLOPE))
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        if self.normalize:
            x = self.norm2(x)
        return self.conv2(F.leaky_relu(x, SLOPE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self._shortcut(x) + self._residual(x)) / math.sqrt(2)


class AdaIN(nn.Module):
    """Instance norm whose scale and shift come from the style code: (B, C, H, W), (B, S) -> (B, C, H, W)."""

    def __init__(self, style_dim: int, num_features: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(num_features, affine=False)
        self.fc = nn.Linear(style_dim, num_features * 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h = self.fc(s)[:, :, None, None]  # (B, 2C, 1, 1)
        gamma, beta = torch.chunk(h, chunks=2, dim=1)
        return (1 + gamma) * self.norm(x) + beta


class AdainResBlk(nn.Module):
    """(B, dim_in, H, W), style (B, S) -> (B, dim_out, 2H or H, 2W or W)."""

    def __init__(self, dim_in: int, dim_out: int, style_dim: int, *, upsample: bool = False) -> None:
        super().__init__()
        self.upsample = upsample
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN(style_dim, dim_in)
        self.norm2 = AdaIN(style_dim, dim_out)
        self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False) if dim_in != dim_out else None

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest") if self.upsample else x

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        x = self._up(x)
        return self.conv1x1(x) if self.conv1x1 is not None else x

    def _residual(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self._up(F.leaky_relu(self.norm1(x, s), SLOPE)))
        return self.conv2(F.leaky_relu(self.norm2(x, s), SLOPE))

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return (self._residual(x, s) + self._shortcut(x)) / math.sqrt(2)
