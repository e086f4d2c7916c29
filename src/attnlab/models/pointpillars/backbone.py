"""The 2-D backbone and neck (PointPillars, arXiv:1812.05784, section 2.2).

Top-down: blocks ``Block(S, L, F)`` of a stride-S 3x3 conv then L stride-1 3x3 convs with F
channels (each conv followed by BatchNorm and ReLU); KITTI: (2, 3, 64), (2, 5, 128), (2, 5, 256).
Neck: each block's output upsampled by a transposed conv ``Up(S_in, S_out, F)`` (BN, ReLU) to
one resolution and concatenated: 3 x 128 channels at stride 2 of the pseudo-image.

:meth:`Backbone.input_span` gives the rows (or columns) of the input that one output row depends
on, so that an output cell can be computed exactly from a window of the pseudo-image
(:mod:`attnlab.explain.points` explains each box on such a window).

Reference: zhulf0804/PointPillars ``Backbone`` and ``Neck`` (BN eps 1e-3, momentum 0.01 by
default; no conv biases).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _conv_bn_relu(cin: int, cout: int, stride: int, momentum: float) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout, eps=1e-3, momentum=momentum),
        nn.ReLU(inplace=True),
    ]


class Backbone(nn.Module):
    """(B, in_dim, H, W) -> (B, sum(up_channels), H / strides[0], W / strides[0])."""

    def __init__(
        self,
        in_dim: int,
        channels: tuple[int, ...],
        layer_nums: tuple[int, ...],
        strides: tuple[int, ...],
        up_strides: tuple[int, ...],
        up_channels: tuple[int, ...],
        bn_momentum: float = 0.01,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        self.ups = nn.ModuleList()
        cin = in_dim
        for cout, num, stride, up, up_dim in zip(
            channels, layer_nums, strides, up_strides, up_channels, strict=True
        ):
            layers = _conv_bn_relu(cin, cout, stride, bn_momentum)
            for _ in range(num):
                layers += _conv_bn_relu(cout, cout, 1, bn_momentum)
            self.blocks.append(nn.Sequential(*layers))
            self.ups.append(
                nn.Sequential(
                    nn.ConvTranspose2d(cout, up_dim, up, stride=up, bias=False),
                    nn.BatchNorm2d(up_dim, eps=1e-3, momentum=bn_momentum),
                    nn.ReLU(inplace=True),
                )
            )
            cin = cout

    @property
    def total_stride(self) -> int:
        """The deepest block's stride over the input: a window must start at a multiple of it for the
        strided convolutions to sample the same positions as on the whole input."""
        return math.prod(
            int(m.stride[0])
            for m in self.blocks.modules()
            if isinstance(m, nn.Conv2d)  # type: ignore[index]
        )

    def input_span(self, first: int, last: int) -> tuple[int, int]:
        """The input rows ``[lo, hi]`` (inclusive, possibly outside the input) that the output rows
        ``[first, last]`` depend on: the hull over the stages of each stage's walk back through its
        transposed conv and every convolution before it. Rows and columns alike (square kernels)."""
        spans = []
        for stage in range(len(self.blocks)):
            span = _back(self.ups[stage], first, last)
            for block in reversed(self.blocks[: stage + 1]):
                span = _back(block, *span)
            spans.append(span)
        return min(a for a, _ in spans), max(b for _, b in spans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for block, up in zip(self.blocks, self.ups, strict=True):
            x = block(x)
            outs.append(up(x))
        return torch.cat(outs, 1)


def _back(layers: nn.Module, first: int, last: int) -> tuple[int, int]:
    """The input rows ``[lo, hi]`` the output rows ``[first, last]`` of ``layers`` depend on; only
    the (transposed) convolutions change the span (BatchNorm and ReLU act per position)."""
    lo, hi = first, last
    for m in reversed(list(layers.modules())):
        if not isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            continue
        k, s, p, d = m.kernel_size[0], m.stride[0], int(m.padding[0]), m.dilation[0]  # type: ignore[index]
        if isinstance(m, nn.Conv2d):  # out o reads in o * s - p + j * d, j < k
            lo, hi = lo * s - p, hi * s - p + (k - 1) * d
        else:  # in i writes out i * s - p + j * d: the ins that reach o
            lo, hi = -((-(lo + p - (k - 1) * d)) // s), (hi + p) // s
    return lo, hi
