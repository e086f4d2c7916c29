"""The component VAE encoder of MONet and ViMON: (image, log mask) -> posterior statistics.

Burgess et al., arXiv:1901.11390, appendix B.2; the layout of ecker-lab/object-centric-
representation-benchmark ``ocrb/vimon/networks/vae.py``: 3x3 stride-2 convs (padding 1,
ReLU) with ``channels`` (32, 32, 64, 64), flatten, Linear -> ReLU -> Linear to
``out_dim`` (MONet: the mean and log-variance of the latent, 2 x 16; ViMON: the 32-d
input of its GRU). The decoder side is :class:`attnlab.layers.broadcast_decoder.BroadcastDecoder`.
"""

from __future__ import annotations

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.layers._chunking import cpu_chunked


class ComponentEncoder(nn.Module):
    """(N, in_chans, S, S) -> (N, out_dim)."""

    def __init__(
        self,
        *,
        in_chans: int = 4,
        out_dim: int = 32,
        image_size: int = 64,
        channels: tuple[int, ...] = (32, 32, 64, 64),
        hidden: int = 256,
    ) -> None:
        super().__init__()
        size = image_size
        layers: list[nn.Module] = []
        for i, width in enumerate(channels):
            layers += [nn.Conv2d(in_chans if i == 0 else channels[i - 1], width, 3, 2, 1), nn.ReLU()]
            size = (size - 1) // 2 + 1  # stride 2, padding 1, kernel 3
        self.in_chans = in_chans
        self.image_size = image_size
        self.convs = nn.Sequential(*layers)
        self.mlp = nn.Sequential(
            nn.Linear(channels[-1] * size * size, hidden), nn.ReLU(), nn.Linear(hidden, out_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        want = (self.in_chans, self.image_size, self.image_size)
        if x.dim() != 4 or x.shape[1:] != want:
            raise InputError(f"encoder input must be (N, {', '.join(map(str, want))}), got {tuple(x.shape)}")
        return cpu_chunked(self._encode, x)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.convs(x).flatten(1))  # (N, C * s * s) -> (N, out_dim)
