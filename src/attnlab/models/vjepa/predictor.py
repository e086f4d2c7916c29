"""V-JEPA's predictor: a narrow transformer that predicts target-token features from context tokens.

Reference: facebookresearch/jepa ``src/models/predictor.py`` (``VisionTransformerPredictor``
with ``use_mask_tokens=True``, as ``configs/pretrain/vit*.yaml`` train it).

Context features (B, Nc, D) are projected to the predictor width, get the predictor's own 3D
sincos table at their positions; each target position gets a learnable mask token (one token
per mask type: ``mask_index`` 0 for short-range, 1 for long-range blocks) plus its position.
Context then target tokens go through pre-norm blocks; the target tokens' outputs are
normalised and projected back to D.

Deviations: the official ``use_mask_tokens=False`` variant (target features with diffusion
noise) is not provided; the fused ``qkv`` of the official blocks is split into attnlab's
``q_proj`` / ``kv_proj`` on loading (:func:`attnlab.runs.official.load_official_vjepa`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.layers.vit_blocks import LayerNorm6, gather_tokens, vit_blocks
from attnlab.models.vjepa.positions import sincos_table_3d


@dataclass
class PredictorConfig:
    grid: tuple[int, int, int] = (8, 14, 14)  # token grid (T', H', W') of the encoder
    embed_dim: int = 1024  # the encoder's width: the input
    out_dim: int | None = None  # the output: embed_dim (features), or pixels per tubelet (pixel targets)
    dim: int = 384  # the predictor's width
    depth: int = 12
    num_heads: int = 16  # official: the encoder's number of heads
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    num_mask_tokens: int = 2  # one per mask type
    uniform_power: bool = True
    init_std: float = 0.02

    def check(self) -> None:
        if self.dim % self.num_heads:
            raise ConfigError(f"predictor dim={self.dim} must be divisible by num_heads={self.num_heads}")
        if self.num_mask_tokens < 1:
            raise ConfigError(f"num_mask_tokens must be >= 1, got {self.num_mask_tokens}")
        if not self.init_std > 0:
            raise ConfigError(f"predictor init_std must be > 0, got {self.init_std}")


class Predictor(nn.Module):
    """(context features (B, Nc, D), context indices (B, Nc), target indices (B, Nt)) -> (B, Nt, D)."""

    pos_embed: torch.Tensor

    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        config.check()
        self.config = c = config
        self.embed = nn.Linear(c.embed_dim, c.dim)
        # zero-initialised, as the official zero_init_mask_tokens=True
        self.mask_tokens = nn.ParameterList(
            nn.Parameter(torch.zeros(1, 1, c.dim)) for _ in range(c.num_mask_tokens)
        )
        self.register_buffer("pos_embed", sincos_table_3d(c.grid, c.dim, uniform_power=c.uniform_power)[None])
        self.blocks = vit_blocks(c.dim, c.depth, c.num_heads, c.mlp_ratio, c.qkv_bias)
        self.norm = LayerNorm6(c.dim)
        self.proj = nn.Linear(c.dim, c.out_dim or c.embed_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """trunc_normal(std) Linear weights, zero biases, unit LayerNorms (``init_video_model``
        re-initialises every Linear after ``_rescale_blocks``, so nothing is rescaled)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=self.config.init_std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for token in self.mask_tokens:
            nn.init.zeros_(token)

    def positions(self, grid: tuple[int, int, int] | None) -> torch.Tensor:
        """(1, N, d) table for the token ``grid``: the stored one at the configured size, else anew."""
        if grid is None or tuple(grid) == tuple(self.config.grid):
            return self.pos_embed
        table = sincos_table_3d(grid, self.config.dim, uniform_power=self.config.uniform_power)
        return table[None].to(self.pos_embed.device)

    def forward(
        self,
        context: torch.Tensor,
        context_index: torch.Tensor,
        target_index: torch.Tensor,
        *,
        mask_index: int,
        grid: tuple[int, int, int] | None = None,
    ) -> torch.Tensor:
        """``grid``: the clip's token grid when it is not the configured one."""
        c = self.config
        if context.dim() != 3 or context.shape[-1] != c.embed_dim or context.shape[:2] != context_index.shape:
            raise InputError(
                f"context must be (B, Nc, {c.embed_dim}) with indices (B, Nc), got {tuple(context.shape)} "
                f"and {tuple(context_index.shape)}"
            )
        B = context.shape[0]
        table = self.positions(grid).to(context.dtype).expand(B, -1, -1)  # (B, N, d)
        x = self.embed(context) + gather_tokens(table, context_index)  # (B, Nc, d)
        token = self.mask_tokens[mask_index % c.num_mask_tokens]  # (1, 1, d)
        targets = token + gather_tokens(table, target_index)  # (B, Nt, d)
        x = torch.cat([x, targets], dim=1)  # (B, Nc + Nt, d), context first
        for block in self.blocks:
            x = block(x)
        x = self.norm(x[:, context.shape[1] :])  # (B, Nt, d); the norm is per token
        return self.proj(x)  # (B, Nt, out_dim)
