"""The prompt-tuning token of seed 004 (Funai et al., "SAM のプロンプトチューニングと繰り返し推論による
細胞画像セグメンテーションの高精度化", 2024): a learnable vector, mapped by one linear layer to the
prompt embedding size and appended to every prompt's sparse embeddings, so that the mask
decoder learns to tolerate boxes of the wrong size.

The thesis uses a 128-d vector and a linear layer to 256 (SAM's prompt dimension) and trains the
token with the mask decoder while SAM's own learned prompt embeddings stay frozen. The
initialisation is not stated there; ours is N(0, 1) for the vector (as ``nn.Embedding``, the
learned embeddings' own init) and PyTorch's default for the linear layer.
"""

from __future__ import annotations

import torch
from torch import nn


class PromptToken(nn.Module):
    """``forward(batch)`` -> the token (batch, 1, out_dim), the same for every prompt set."""

    def __init__(self, token_dim: int, out_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(1, token_dim))
        self.proj = nn.Linear(token_dim, out_dim)

    def forward(self, batch: int) -> torch.Tensor:
        return self.proj(self.embedding).expand(batch, 1, -1)  # (batch, 1, out_dim)
