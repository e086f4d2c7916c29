"""A fixed per-feature standardisation, fitted once on training tokens and saved with the weights.

``(x - mean) / std`` over the last axis, with the mean and the (biased) standard deviation of
every token of the training data, measured in float64. It is a BatchNorm without affine
parameters frozen at the training statistics; as buffers, the statistics travel in the
model's state dict, so a model that loads the weights (``model.aloe_init``, ``attnlab
evaluate``) scales its inputs as it was trained. ``fitted`` records whether :meth:`fit` ran
(a loaded state dict brings it along): a fresh module passes inputs through unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from attnlab.errors import InputError

MIN_STD = 1e-6  # a feature that never varies is centred, not divided by 0


class FeatureScale(nn.Module):
    """(..., D) -> (..., D): each feature minus its training mean, over its training std."""

    mean: torch.Tensor  # (D,) buffers
    std: torch.Tensor
    fitted: torch.Tensor  # () bool

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.register_buffer("fitted", torch.tensor(False))

    @torch.no_grad()
    def fit(self, tokens: torch.Tensor) -> None:
        """Set the statistics from every token of ``tokens`` (..., D)."""
        dim = self.mean.shape[0]
        if tokens.shape[-1] != dim or tokens.numel() == 0:
            raise InputError(f"the tokens to fit must be non-empty (..., {dim}), got {tuple(tokens.shape)}")
        flat = tokens.flatten(0, -2).double()  # (N, D): every token of every clip, frame and slot
        self.mean.copy_(flat.mean(0))
        self.std.copy_(flat.std(0, correction=0).clamp_min(MIN_STD))
        self.fitted.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std
