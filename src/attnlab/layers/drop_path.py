"""Stochastic depth (Huang et al., ECCV 2016, arXiv:1603.09382) as ViTs use it on residual branches.

Reference: timm ``layers/drop.py`` (``drop_path``, ``DropPath``), which DINO's
``vision_transformer.py`` follows: in training, each sample's branch output is kept with
probability ``keep = 1 - drop_prob`` and then divided by ``keep``, so the branch's expected
output is unchanged and evaluation needs no rescaling. In evaluation, or at rate 0, the branch
passes through untouched and no random number is drawn (a rate-0 model stays bit-identical to one
without the module, and its RNG stream is not shifted).
"""

from __future__ import annotations

import torch
from torch import nn

from attnlab.errors import ConfigError


def drop_path(x: torch.Tensor, drop_prob: float, training: bool) -> torch.Tensor:
    """Zero whole samples of ``x`` (B, ...) with probability ``drop_prob``, the rest scaled by 1/keep."""
    if drop_prob == 0.0 or not training:
        return x
    keep = 1.0 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)  # one draw per sample, broadcast over tokens and channels
    mask = x.new_empty(shape).bernoulli_(keep)
    if keep > 0.0:  # timm's scale_by_keep; a rate of 1 drops everything and has nothing to scale
        mask.div_(keep)
    return x * mask


class DropPath(nn.Module):
    """:func:`drop_path` as a module: ``drop_prob`` in [0, 1], active in training mode only."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= drop_prob <= 1.0:
            raise ConfigError(f"drop_path must be in [0, 1], got {drop_prob}")
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob:g}"
