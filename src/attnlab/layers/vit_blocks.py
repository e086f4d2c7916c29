"""The pieces of an official-style ViT stack that V-JEPA, DINO and MAE encoders share.

facebookresearch/jepa, dino and mae all build their encoders (and MAE/V-JEPA their decoders
or predictors) from the same pre-norm block (timm's ``Block``: fused ``qkv`` with bias, GELU
MLP) with ``LayerNorm(eps=1e-6)``, and select tokens by index (V-JEPA's ``apply_masks``,
MAE's ``random_masking`` gather). They live here, below the model families, so that each
family's file imports them without importing another family.
"""

from __future__ import annotations

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.layers.transformer import TransformerBlock


class LayerNorm6(nn.LayerNorm):
    """LayerNorm with eps 1e-6, the norm of every official V-JEPA, DINO and MAE block."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim, eps=1e-6)


def drop_path_rates(drop_path_rate: float, depth: int) -> list[float]:
    """Stochastic-depth rate per block, rising linearly from 0 to ``drop_path_rate`` (DINO's and timm's
    ``torch.linspace(0, drop_path_rate, depth)``): early blocks, which every later one builds on,
    are dropped least."""
    # plain floats, not torch.linspace: models built on the meta device cannot read tensors back
    if depth == 1:
        return [0.0]
    return [drop_path_rate * i / (depth - 1) for i in range(depth)]


def vit_blocks(
    dim: int, depth: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, drop_path_rate: float = 0.0
) -> nn.ModuleList:
    """``depth`` pre-norm transformer blocks as the official ``vit_*`` factories build them."""
    return nn.ModuleList(
        TransformerBlock(
            dim,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            norm_layer=LayerNorm6,
            drop_path=rate,
        )
        for rate in drop_path_rates(drop_path_rate, depth)
    )


def gather_tokens(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Tokens (B, N, D) at ``index`` (B, K) -> (B, K, D) (the official ``apply_masks``, one mask)."""
    if index.dim() != 2 or index.shape[0] != x.shape[0] or index.dtype != torch.int64:
        raise InputError(
            f"a mask must be int64 (B={x.shape[0]}, K) token indices, got {index.dtype} {tuple(index.shape)}"
        )
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= x.shape[1]):
        raise InputError(
            f"mask indices must lie in [0, {x.shape[1]}), got [{int(index.min())}, {int(index.max())}]"
        )
    return torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[-1]))
