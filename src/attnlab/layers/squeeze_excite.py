"""Squeeze-and-Excitation channel gating (Hu, Shen & Sun, CVPR 2018, arXiv:1709.01507).

    s = gate(W_2 act(W_1 mean_{spatial}(x) + b_1) + b_2)     (B, C)
    y = s * x                                               broadcast over positions

For any number of positional dims: (B, C, L) sequences, (B, C, H, W) images,
(B, C, T, H, W) videos. Reference implementation: hujie-frank/SENet (Caffe), whose
two fully connected layers carry biases, as here.

Deviation: the hidden width is ``max(min_channels, channels // reduction)`` (as
timm's floor) rather than exactly C/r, so narrow layers keep a usable bottleneck.
"""

from __future__ import annotations

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.layers._recording import RecordsAttention


class SqueezeExcite(RecordsAttention):
    """Rescale the channels of x (B, C, *positions) by gates s in (0, 1); returns x's shape.

    ``gate_layer`` is instantiated without arguments (``nn.Sigmoid``, ``nn.Hardsigmoid``, ...).
    Records the gate s as (B, C): channel weights, not a distribution over positions.
    """

    def __init__(
        self,
        channels: int,
        *,
        reduction: int = 16,
        min_channels: int = 8,
        act_layer: type[nn.Module] = nn.ReLU,
        gate_layer: type[nn.Module] = nn.Sigmoid,
    ) -> None:
        super().__init__()
        if channels < 1 or reduction < 1 or min_channels < 1:
            raise InputError(
                f"channels, reduction and min_channels must be >= 1, "
                f"got {channels}, {reduction}, {min_channels}"
            )
        self.channels = channels
        self.hidden = max(min_channels, channels // reduction)
        self.fc1 = nn.Linear(channels, self.hidden)
        self.act = act_layer()
        self.fc2 = nn.Linear(self.hidden, channels)
        self.gate = gate_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3 or x.shape[1] != self.channels or not x.is_floating_point():
            raise InputError(
                f"x must be floating (B, {self.channels}, *positions) with at least one positional dim, "
                f"got {x.dtype} {tuple(x.shape)}"
            )
        squeezed = x.mean(dim=tuple(range(2, x.dim())))  # (B, C)
        s: torch.Tensor = self.gate(self.fc2(self.act(self.fc1(squeezed))))  # (B, C)
        self._record(s)
        return x * s.view(*s.shape, *(1,) * (x.dim() - 2))  # (B, C, 1, ...) broadcast over positions
