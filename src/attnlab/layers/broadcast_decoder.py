"""Spatial broadcast decoder (Watters et al., arXiv:1901.07017), as MONet and ViMON use it.

A latent ``z`` (N, D) is tiled over a grid ``num_layers * (kernel_size - 1)`` pixels
larger than the output, two coordinate channels are appended, and ``num_layers``
unpadded convolutions (ReLU) shrink it to ``image_size``; a 1x1 conv gives
``out_chans`` maps (MONet/ViMON: 3 RGB means and 1 mask logit, no squashing).

Coordinates follow the reference (ecker-lab/object-centric-representation-benchmark,
``ocrb/vimon/networks/vae.py``): ``torch.meshgrid(linspace(-1, 1, H), linspace(-1, 1,
W))`` with 'ij' indexing, so the first coordinate channel varies along the rows.

``fourier_bands`` (0: the reference) appends ``sin`` and ``cos`` of ``2^k * pi`` times each
coordinate, k = 0 .. bands - 1, as coordinate networks do (Tancik et al. 2020, "Fourier
Features Let Networks Learn High Frequency Functions"): a per-pixel network of the raw
coordinates draws soft blobs for a long time before it draws an edge.

Speed: the first convolution has no padding, so on the tiled part of its input it sees
the same vector at every position; its output there is a per-sample constant,
``(sum of the kernel over space) @ z``. We therefore compute the coordinate part of the
first layer once per call (it is the same for every sample) and add a matrix product
per sample, instead of materialising and convolving the (N, D + 2, H + 8, W + 8) tiled
tensor. The parameters stay those of an ordinary ``nn.Conv2d``; the result equals the
tiled convolution up to float rounding (tested in float64).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import InputError
from attnlab.layers._chunking import cpu_chunked


def coordinate_grid(height: int, width: int) -> torch.Tensor:
    """(2, height, width): channel 0 varies along rows, channel 1 along columns, in [-1, 1]."""
    rows, cols = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
    return torch.stack([rows, cols])  # (2, H, W)


def fourier_grid(height: int, width: int, bands: int) -> torch.Tensor:
    """(2 + 4 * bands, height, width): the coordinate grid, then sin and cos of 2^k pi times it."""
    grid = coordinate_grid(height, width)  # (2, H, W)
    scales = (2.0 ** torch.arange(bands) * torch.pi)[:, None, None, None]  # (bands, 1, 1, 1)
    angles = (scales * grid).flatten(0, 1)  # (bands * 2, H, W)
    return torch.cat([grid, angles.sin(), angles.cos()])


class BroadcastDecoder(nn.Module):
    """(N, latent_dim) -> (N, out_chans, H, W) with H, W = ``image_size``."""

    grid: torch.Tensor

    def __init__(
        self,
        latent_dim: int,
        *,
        out_chans: int = 4,
        image_size: int | tuple[int, int] = 64,
        channels: int = 32,
        num_layers: int = 4,
        kernel_size: int = 3,
        fourier_bands: int = 0,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise InputError(f"num_layers must be >= 1, got {num_layers}")
        if fourier_bands < 0:
            raise InputError(f"fourier_bands must be >= 0, got {fourier_bands}")
        self.latent_dim = latent_dim
        height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
        self.image_size = (height, width)
        pad = num_layers * (kernel_size - 1)
        grid = fourier_grid(height + pad, width + pad, fourier_bands)  # (2 + 4 * bands, H + pad, W + pad)
        self.register_buffer("grid", grid, persistent=False)
        layers: list[nn.Module] = []
        for i in range(num_layers):
            in_chans = latent_dim + len(grid) if i == 0 else channels
            layers += [nn.Conv2d(in_chans, channels, kernel_size), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        self.head = nn.Conv2d(channels, out_chans, 1)

    def first_layer(self, z: torch.Tensor) -> torch.Tensor:
        """The first conv on [tiled z, coordinates], without tiling z: (N, C, h, w)."""
        conv = cast(nn.Conv2d, self.convs[0])
        weight_z, weight_xy = conv.weight[:, : self.latent_dim], conv.weight[:, self.latent_dim :]
        grid = self.grid.to(z.dtype)[None]  # (1, G, H + pad, W + pad), G coordinate channels
        coords = F.conv2d(grid, weight_xy, conv.bias)  # (1, C, h, w), shared by all samples
        per_sample = z @ weight_z.sum(dim=(2, 3)).T  # (N, C)
        return coords + per_sample[:, :, None, None]  # (N, C, h, w)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise InputError(f"z must be (N, {self.latent_dim}), got {tuple(z.shape)}")
        return cpu_chunked(self._decode, z)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        x = self.first_layer(z)
        rest = cast(nn.Sequential, self.convs[1:])  # the first ReLU onwards
        return self.head(rest(x))

    def forward_tiled(self, z: torch.Tensor) -> torch.Tensor:
        """The textbook computation (tile, concatenate, convolve); a reference for tests."""
        height, width = self.grid.shape[1:]
        tiled = z[:, :, None, None].expand(-1, -1, height, width)  # (N, D, H + pad, W + pad)
        grid = self.grid.to(z.dtype).expand(z.shape[0], -1, -1, -1)  # (N, G, H + pad, W + pad)
        return self.head(self.convs(torch.cat([tiled, grid], dim=1)))
