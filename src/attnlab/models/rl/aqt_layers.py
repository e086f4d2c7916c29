"""The pieces the Action Q-Transformers share: DETR's post-norm encoder and decoder layers
(Carion et al., "End-to-End Object Detection with Transformers", arXiv:2005.12872, github
facebookresearch/detr ``models/transformer.py``) without positional inputs, as the official AQT
uses them, on :class:`attnlab.layers.attention.MultiHeadAttention` (so that
:func:`attnlab.explain.capture` records them), the Nature-DQN convolutions and the navigation
AQTs' cutting of the view into patches.
"""

from __future__ import annotations

import torch
from torch import nn

from attnlab.layers.attention import MultiHeadAttention


class FeedForward(nn.Module):
    """DETR's FFN with its residual dropout: dropout(fc2(dropout(relu(fc1(x)))))."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(torch.relu(self.fc1(x)))))


class PostNormEncoderLayer(nn.Module):
    """DETR's encoder layer without positions: x = norm1(x + attn(x)); x = norm2(x + ffn(x))."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(dim, num_heads=num_heads, attn_drop=dropout)
        self.mlp = FeedForward(dim, ffn_dim, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.drop(self.self_attn(x)))
        return self.norm2(x + self.mlp(x))  # the FFN's last dropout is DETR's dropout2


class PostNormDecoderLayer(nn.Module):
    """DETR's decoder layer without positions: self-attention, cross-attention, FFN, each post-norm."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(dim, num_heads=num_heads, attn_drop=dropout)
        self.cross_attn = MultiHeadAttention(dim, num_heads=num_heads, attn_drop=dropout)
        self.mlp = FeedForward(dim, ffn_dim, dropout)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        tgt = self.norm1(tgt + self.drop1(self.self_attn(tgt)))
        tgt = self.norm2(tgt + self.drop2(self.cross_attn(tgt, memory)))
        return self.norm3(tgt + self.mlp(tgt))


class Encoder(nn.Module):
    """``depth`` post-norm encoder layers, no final norm (as DETR with ``normalize_before=False``)."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, dropout: float, depth: int = 1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [PostNormEncoderLayer(dim, num_heads, ffn_dim, dropout) for _ in range(depth)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class Decoder(nn.Module):
    """``depth`` post-norm decoder layers and a final LayerNorm."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, dropout: float, depth: int = 1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [PostNormDecoderLayer(dim, num_heads, ffn_dim, dropout) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            tgt = layer(tgt, memory)
        return self.norm(tgt)


def nature_torso(in_channels: int, out_channels: int) -> nn.Sequential:
    """Mnih et al. 2015's convolutions: 84 -> 20 -> 9 -> 7."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 8, stride=4),
        nn.ReLU(),
        nn.Conv2d(32, 64, 4, stride=2),
        nn.ReLU(),
        nn.Conv2d(64, out_channels, 3, stride=1),
        nn.ReLU(),
    )


def patchify(image: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, (H / p) * (W / p), C * p * p), patches row-major, each flattened (c, y, x)."""
    B, C, H, W = image.shape
    gy, gx = H // patch, W // patch
    x = image.reshape(B, C, gy, patch, gx, patch).permute(0, 2, 4, 1, 3, 5)  # (B, gy, gx, C, p, p)
    return x.reshape(B, gy * gx, C * patch * patch)


def torso_side(size: int) -> int:
    """The side of :func:`nature_torso`'s output for a ``size`` x ``size`` input (7 for 84)."""
    for kernel, stride in ((8, 4), (4, 2), (3, 1)):
        size = (size - kernel) // stride + 1
    return size
