"""V-JEPA's video encoder: a ViT on 3D tubelets (Bardes et al. 2024, arXiv:2404.08471).

Reference: facebookresearch/jepa ``src/models/vision_transformer.py`` (``VisionTransformer``
as the ``vit_*`` factories build it) and ``src/models/utils/patch_embed.py`` (``PatchEmbed3D``).

A clip (B, C, T, H, W) is cut into tubelets of ``tubelet_size`` frames x ``patch_size`` x
``patch_size`` pixels by one Conv3d; tokens are ordered t-major, then row, then column; the
fixed 3D sine-cosine table (:mod:`attnlab.models.vjepa.positions`) is added; there is no
[CLS] token. Given the indices of the tokens to keep (a context mask), only those tokens go
through the pre-norm blocks (:class:`attnlab.layers.transformer.TransformerBlock`, so
``attnlab.explain.capture`` records their attention) and the final LayerNorm.

Deviations:
* The table is a buffer, not a frozen parameter: it is a function of the config. It stays in
  the state dict (persistent) so that official checkpoints load key for key.
* Another clip size evaluates the sinusoids at the new grid instead of interpolating the
  table trilinearly as the official ``interpolate_pos_encoding`` does (exact for a fixed function).
* Attention masks passed to the official blocks are ignored there; ours take none.
* ``out_layers`` (features of several depths) is not provided.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.layers.vit_blocks import LayerNorm6, gather_tokens, vit_blocks
from attnlab.models.vjepa.positions import sincos_table_3d


@dataclass
class VideoViTConfig:
    """The encoder's architecture; the clip size is the one the position table is built for."""

    img_size: int = 224
    num_frames: int = 16
    patch_size: int = 16
    tubelet_size: int = 2
    in_chans: int = 3
    dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    uniform_power: bool = True  # the channel split of the 3D sincos table (see positions.py)
    init_std: float = 0.02

    def grid(self) -> tuple[int, int, int]:
        """Token grid (T', H', W') of a clip of the configured size."""
        return (
            self.num_frames // self.tubelet_size,
            self.img_size // self.patch_size,
            self.img_size // self.patch_size,
        )

    def check(self) -> None:
        if self.patch_size < 1 or self.img_size % self.patch_size or self.img_size < self.patch_size:
            raise ConfigError(
                f"img_size={self.img_size} must be a positive multiple of patch_size={self.patch_size}"
            )
        if (
            self.tubelet_size < 1
            or self.num_frames % self.tubelet_size
            or self.num_frames < self.tubelet_size
        ):
            raise ConfigError(
                f"num_frames={self.num_frames} must be a positive multiple of "
                f"tubelet_size={self.tubelet_size}"
            )
        if self.dim % self.num_heads:
            raise ConfigError(f"dim={self.dim} must be divisible by num_heads={self.num_heads}")
        if not self.init_std > 0:
            raise ConfigError(f"init_std must be > 0, got {self.init_std}")


def check_clips(clips: torch.Tensor, config: VideoViTConfig) -> tuple[int, int, int]:
    """The token grid of ``clips`` (B, C, T, H, W), or a one-line InputError."""
    c = config
    if clips.dim() != 5 or clips.shape[1] != c.in_chans or not clips.is_floating_point():
        raise InputError(
            f"clips must be floating (B, C={c.in_chans}, T, H, W), got {clips.dtype} {tuple(clips.shape)}"
        )
    t, h, w = clips.shape[2:]
    if t == 0 or h == 0 or w == 0 or t % c.tubelet_size or h % c.patch_size or w % c.patch_size:
        raise InputError(
            f"clip size (T, H, W)={(t, h, w)} must be positive multiples of "
            f"(tubelet_size, patch_size, patch_size)={(c.tubelet_size, c.patch_size, c.patch_size)}"
        )
    return (t // c.tubelet_size, h // c.patch_size, w // c.patch_size)


class TubeletEmbed(nn.Module):
    """Conv3d with kernel = stride = (tubelet, patch, patch): (B, C, T, H, W) -> (B, T'H'W', D)."""

    def __init__(self, config: VideoViTConfig) -> None:
        super().__init__()
        c = config
        size = (c.tubelet_size, c.patch_size, c.patch_size)
        self.proj = nn.Conv3d(c.in_chans, c.dim, kernel_size=size, stride=size)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.proj(clips).flatten(2).transpose(1, 2)  # (B, D, T', H', W') -> (B, T'H'W', D)


class VideoViT(nn.Module):
    """Clips (B, C, T, H, W) -> token features (B, N, D), or (B, K, D) for the kept tokens ``keep``."""

    pos_embed: torch.Tensor

    def __init__(self, config: VideoViTConfig) -> None:
        super().__init__()
        config.check()
        self.config = c = config
        self.patch_embed = TubeletEmbed(c)
        table = sincos_table_3d(c.grid(), c.dim, uniform_power=c.uniform_power)
        self.register_buffer("pos_embed", table[None])  # (1, N, D), as the official state dict keeps it
        self.blocks = vit_blocks(c.dim, c.depth, c.num_heads, c.mlp_ratio, c.qkv_bias)
        self.norm = LayerNorm6(c.dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """As the official ``init_video_model``: trunc_normal(std) for every Linear and the Conv3d,
        zero biases, unit LayerNorms. Its final re-init of every Linear undoes ``_rescale_blocks``
        (the summary's ``init_facts``), so no residual branch is rescaled here either."""
        for m in self.modules():
            if isinstance(m, nn.Linear | nn.Conv3d):
                nn.init.trunc_normal_(m.weight, std=self.config.init_std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def positions(self, grid: tuple[int, int, int]) -> torch.Tensor:
        """(1, N, D) table for ``grid``: the stored one at the configured size, else evaluated anew."""
        if grid == self.config.grid():
            return self.pos_embed
        table = sincos_table_3d(grid, self.config.dim, uniform_power=self.config.uniform_power)
        return table[None].to(self.pos_embed.device)

    def forward(self, clips: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        grid = check_clips(clips, self.config)
        x = self.patch_embed(clips)  # (B, N, D)
        x = x + self.positions(grid).to(x.dtype)
        if keep is not None:
            x = gather_tokens(x, keep)  # (B, K, D)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)
