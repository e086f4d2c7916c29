"""The pre-norm transformer block (Vaswani et al. 2017; pre-norm as in ViT, arXiv:2010.11929)."""

from __future__ import annotations

import torch
from torch import nn

from attnlab.layers.attention import MultiHeadAttention
from attnlab.layers.drop_path import DropPath


class Mlp(nn.Module):
    """Linear -> act -> dropout -> Linear -> dropout, hidden = dim * mlp_ratio."""

    def __init__(
        self,
        dim: int,
        *,
        mlp_ratio: float = 4.0,
        out_dim: int | None = None,
        act_layer: type[nn.Module] = nn.GELU,
        drop: float = 0.0,
    ) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden, out_dim or dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class TransformerBlock(nn.Module):
    """x + attn(norm(x)), then x + mlp(norm(x)); masks go to the attention.

    ``drop_path`` > 0: stochastic depth, each residual branch dropped per sample in training
    (:class:`attnlab.layers.drop_path.DropPath`, timm's); 0 leaves the block exactly as without it.
    """

    def __init__(
        self,
        dim: int,
        *,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        act_layer: type[nn.Module] = nn.GELU,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = MultiHeadAttention(
            dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop
        )
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, mlp_ratio=mlp_ratio, act_layer=act_layer, drop=proj_drop)
        # no parameters either way: state dicts are the same with and without stochastic depth
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(
        self,
        x: torch.Tensor,
        *,
        attn_mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        h = self.norm1(x)
        attn = self.attn(h, attn_mask=attn_mask, key_padding_mask=key_padding_mask, is_causal=is_causal)
        x = x + self.drop_path(attn)
        return x + self.drop_path(self.mlp(self.norm2(x)))
