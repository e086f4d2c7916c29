"""Vision Transformer image classifier (Dosovitskiy et al., ICLR 2021, arXiv:2010.11929).

Images are cut into non-overlapping ``patch_size`` squares, each linearly embedded
(a strided convolution, as timm's ``PatchEmbed``), learned positions are added, a
[CLS] token is prepended, ``depth`` pre-norm transformer blocks
(:class:`attnlab.layers.transformer.TransformerBlock`, so ``attnlab.explain.capture``
records every layer's attention), LayerNorm, a linear head on [CLS].

Reference: timm ``vision_transformer.py``. Deviations, both timm options: the
[CLS] token gets no position embedding (timm's ``no_embed_class=True``), so the
patch table is a plain (h, w, D) grid that is resized for other image sizes
(:class:`attnlab.layers.pos_embed.LearnedPositionEmbedding`); the MLP ratio of the
small presets is 2, not 4. Explanation helpers read ``num_prefix_tokens`` (tokens
before the patches, here 1) and ``patch_size`` to map token relevance back to pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.layers.pos_embed import LearnedPositionEmbedding
from attnlab.layers.transformer import TransformerBlock
from attnlab.models._registry import register_model
from attnlab.models.outputs import ClassifierOutput


@dataclass
class ViTConfig:
    image_size: int = 224  # the size position embeddings are learned at; others are interpolated
    patch_size: int = 16
    in_chans: int = 3
    num_classes: int = 1000
    dim: int = 192
    depth: int = 12
    num_heads: int = 3
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    dropout: float = 0.0
    attn_drop: float = 0.0


@register_model(
    "vit-tiny-fashion",
    config=ViTConfig(
        image_size=28, patch_size=4, in_chans=1, num_classes=10, dim=64, depth=4, num_heads=4, mlp_ratio=2.0
    ),
)
class VisionTransformer(nn.Module):
    """ViT: images (B, in_chans, H, W), H and W multiples of patch_size -> :class:`ClassifierOutput`."""

    num_prefix_tokens = 1  # [CLS] precedes the patch tokens

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = c = config
        if c.patch_size < 1 or c.image_size < c.patch_size or c.image_size % c.patch_size:
            raise ConfigError(
                f"image_size={c.image_size} must be a positive multiple of patch_size={c.patch_size}"
            )
        if c.dim % c.num_heads:
            raise ConfigError(f"dim={c.dim} must be divisible by num_heads={c.num_heads}")
        self.patch_size = c.patch_size
        grid = c.image_size // c.patch_size
        self.patch_embed = nn.Conv2d(c.in_chans, c.dim, c.patch_size, stride=c.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        self.pos_embed = LearnedPositionEmbedding(c.dim, grid=(grid, grid))
        self.blocks = nn.ModuleList(
            TransformerBlock(
                c.dim,
                num_heads=c.num_heads,
                mlp_ratio=c.mlp_ratio,
                qkv_bias=c.qkv_bias,
                attn_drop=c.attn_drop,
                proj_drop=c.dropout,
            )
            for _ in range(c.depth)
        )
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, c.num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """timm's ViT init: truncated normal 0.02 for [CLS] and linear weights, zero biases."""
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        """Valid inputs for ``forward`` (used by the registry-wide tests)."""
        size = self.config.image_size
        return {"images": torch.randn(batch_size, self.config.in_chans, size, size)}

    def _check(self, images: torch.Tensor) -> None:
        c = self.config
        if images.dim() != 4 or images.shape[1] != c.in_chans or not images.is_floating_point():
            raise InputError(
                f"images must be floating (B, {c.in_chans}, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        if images.shape[2] % c.patch_size or images.shape[3] % c.patch_size or images.shape[2] == 0:
            raise InputError(
                f"image size {tuple(images.shape[2:])} must be positive multiples of "
                f"patch_size={c.patch_size}"
            )

    def forward(self, images: torch.Tensor) -> ClassifierOutput:
        self._check(images)
        patches = self.patch_embed(images)  # (B, D, h, w)
        grid = (patches.shape[2], patches.shape[3])
        x = self.pos_embed(patches.flatten(2).transpose(1, 2), grid=grid)  # (B, h*w, D), row-major
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1 + h*w, D)
        for block in self.blocks:
            x = block(x)
        cls = self.norm(x[:, 0])  # (B, D)
        return ClassifierOutput(logits=self.head(cls), features=cls)
