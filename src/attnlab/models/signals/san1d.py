"""1D Self-Attention Network (1D-SAN) of seed 001: SAN's pairwise self-attention along time.

Thesis: R. Tanabe, "1D Self-Attention Networkによる神経信号からの動作識別に関する研究" (Chubu
University, Fujiyoshi lab, master's abstract 2020), built on SAN (Zhao, Jia, Koltun, "Exploring
Self-attention for Image Recognition", CVPR 2020, arXiv:2004.13621; reference code hszhao/SAN,
CUDA-only). No official 1D-SAN code exists.

1D-SAB (thesis Fig. 1), for every time step i and neighbour j in its footprint:
    y_i = sum_j gamma(phi(x_i) - psi(x_j)) ⊙ beta(x_j)         (pairwise attention, subtraction)
    out = x + W_out y                                          (pointwise conv back; the residual)
as SAN's Bottleneck: BN-ReLU -> pairwise attention to ``mid_dim`` channels -> BN-ReLU -> 1x1 conv
back to ``width`` -> + x. The attention is :class:`attnlab.layers.pairwise.PairwiseSelfAttention`
with ``ndim=1``. 1D-SAN ("pair355", thesis 3.3): three 1D-SABs whose neighbours lie 3, 5 and 5
steps away (kernel 3: the step itself and one neighbour each side, at dilation 3, 5, 5).

Deviations and choices the thesis leaves open (docs/signals.md):
* softmax over the footprint, as SAN (the thesis names only the Hadamard product);
* no position term by default (``position=False``): the thesis's gamma sees only delta;
  ``position=True`` adds SAN's;
* widths follow SAN's ratios (rel = width / 16, mid = width / 4, share_planes 8) at width 64,
  with SAN's stem (1x1 conv, BN, ReLU) lifting the input channels and SAN's head (BN, ReLU,
  global average pool over time, linear); the thesis gives no widths;
* reflection padding at the window borders, as SAN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.layers.pairwise import PairwiseSelfAttention, attention_received
from attnlab.models._registry import register_model
from attnlab.models.signals.windows import Combine, WindowClassifier


@dataclass
class SAN1DConfig:
    in_channels: int = 6
    num_classes: int = 4
    width: int = 64
    rel_dim: int = 4  # phi/psi channels (SAN: width / 16)
    mid_dim: int = 16  # attention output channels (SAN: width / 4)
    share_planes: int = 8  # output channels per attention channel
    kernel_size: int = 3  # footprint: the step and kernel_size // 2 neighbours each side
    dilations: tuple[int, ...] = (3, 5, 5)  # neighbour spacing per block
    position: bool = False
    window: int = 64
    stride: int = 10
    combine: Combine = "mean"
    fft: bool = False


class SAB1d(nn.Module):
    """1D Self-Attention Block: (B, width, T) -> (B, width, T)."""

    def __init__(self, c: SAN1DConfig, dilation: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm1d(c.width)
        self.sam = PairwiseSelfAttention(
            c.width,
            out_dim=c.mid_dim,
            rel_dim=c.rel_dim,
            share_planes=c.share_planes,
            kernel_size=c.kernel_size,
            dilation=dilation,
            ndim=1,
            position=c.position,
        )
        self.norm2 = nn.BatchNorm1d(c.mid_dim)
        self.proj = nn.Conv1d(c.mid_dim, c.width, 1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.sam(self.act(self.norm1(x)))  # (B, mid, T)
        return x + self.proj(self.act(self.norm2(y)))


@register_model("san1d-pair355", config=SAN1DConfig())
@register_model("san1d-pair355-fft", config=SAN1DConfig(fft=True))
class SAN1D(WindowClassifier):
    """1D-SAN on (B, in_channels, L >= window) signals -> :class:`ClassifierOutput` (sliding windows)."""

    def __init__(self, config: SAN1DConfig) -> None:
        super().__init__()
        self.config = c = config
        self._setup_windows(c.in_channels, c.window, c.stride, c.combine, c.fft)
        if not c.dilations or min(c.dilations) < 1 or c.num_classes < 2:
            raise ConfigError(f"need dilations >= 1 and num_classes >= 2, got {c.dilations}, {c.num_classes}")
        reach = max(c.dilations) * (c.kernel_size // 2)  # reflection padding needs more steps than this
        if reach >= self.input_length:
            raise ConfigError(f"a footprint reaching {reach} steps needs more than {self.input_length} steps")
        self.stem = nn.Sequential(nn.Conv1d(c.in_channels, c.width, 1), nn.BatchNorm1d(c.width), nn.ReLU())
        self.blocks = nn.ModuleList(SAB1d(c, d) for d in c.dilations)
        self.norm = nn.BatchNorm1d(c.width)
        self.head = nn.Linear(c.width, c.num_classes)
        self.act = nn.ReLU()

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        """Two windows per signal, so the registry tests also run the combination."""
        return {"x": torch.randn(batch_size, self.config.in_channels, self.window + self.stride)}

    def classify_windows(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.stem(windows)  # (N, width, T)
        for block in self.blocks:
            h = block(h)
        pooled = self.act(self.norm(h)).mean(dim=2)  # (N, width)
        return self.head(pooled), pooled

    def attention_over_input(self, weights: Sequence[torch.Tensor], batch_size: int) -> torch.Tensor:
        """Recorded block weights, each (B * n, A, K, T) -> (B, blocks, n, T): the attention each
        step of each window receives (:func:`attention_received`), mean over attention channels."""
        out = []
        for block, w in zip(self.blocks, weights, strict=True):
            sam = block.sam
            got = attention_received(w, (w.shape[-1],), sam.kernel_size, sam.dilation).mean(1)  # (B * n, T)
            out.append(got.view(batch_size, -1, got.shape[-1]))  # (B, n, T)
        return torch.stack(out, dim=1)
