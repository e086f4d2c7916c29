"""The image ViT that DINO, MAE and the distillation student share (Dosovitskiy et al., ICLR 2021,
arXiv:2010.11929), in the layout of the official self-supervised ViTs.

References: facebookresearch/dino ``vision_transformer.py`` (``VisionTransformer``: learned
positions with the [CLS] position included, ``interpolate_pos_encoding``,
``get_last_selfattention``, ``get_intermediate_layers``) and facebookresearch/mae
``models_mae.py`` (the encoder half of ``MaskedAutoencoderViT``: fixed 2D sine-cosine positions,
[CLS] appended after masking).

Images (B, C, H, W) are cut into ``patch_size`` squares by one Conv2d, tokens row-major; the
patch positions are added, then (given ``keep``, MAE's masking) only the kept tokens stay, then
the [CLS] token with its own position goes first; pre-norm blocks
(:class:`attnlab.layers.transformer.TransformerBlock`, so ``attnlab.explain.capture`` records
every layer's attention) and a final LayerNorm (eps 1e-6, as both references).

Positions at another image size:
* ``learned`` (DINO): the patch table is resized **bicubically** with
  ``scale_factor = ((h + 0.1) / h0, (w + 0.1) / w0)`` (h, w: the new patch grid, h0 x w0 the
  stored one), as DINO passes it: a scale factor, not an output size, so the +0.1 moves the
  sampling positions. The [CLS] position is kept. Non-square grids work (rows first).
* ``sincos2d`` (MAE): evaluated at the new grid (MAE itself has no other size; a fixed
  function needs no interpolation). MAE's table puts the **column** sinusoids in the first
  D/2 channels and the row ones in the second half; the [CLS] row is zeros.

Stochastic depth (``drop_path_rate``, DINO's student ViT-S uses 0.1) rises linearly over the
blocks as in DINO and timm; it has no parameters, so state dicts do not depend on it.

Deviations: no dropout (the references' rates are 0); the fused ``qkv`` of the official blocks is
split into ``q_proj`` / ``kv_proj`` on loading (:func:`attnlab.runs.official.load_official_vit`);
the image must be a multiple of the patch size (DINO's convolution silently drops the remainder);
the sincos table is a persistent buffer, not a frozen parameter, so official state dicts load key
for key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.layers.masks import attention_weights
from attnlab.layers.pos_embed import sincos_pos_embed_2d
from attnlab.layers.transformer import TransformerBlock
from attnlab.layers.vit_blocks import LayerNorm6, gather_tokens, vit_blocks

PosEmbed = Literal["learned", "sincos2d"]


@dataclass
class ImageViTConfig:
    """The encoder's architecture; ``img_size`` is the (square) size the position table is built for."""

    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    cls_token: bool = True
    pos_embed: PosEmbed = "learned"
    # stochastic depth, rising linearly over the blocks to this rate (DINO trains ViT-S with 0.1)
    drop_path_rate: float = 0.0

    def grid(self) -> tuple[int, int]:
        """Patch grid (rows, columns) at the configured size."""
        n = self.img_size // self.patch_size
        return (n, n)

    def check(self) -> None:
        if self.patch_size < 1 or self.img_size < self.patch_size or self.img_size % self.patch_size:
            raise ConfigError(
                f"img_size={self.img_size} must be a positive multiple of patch_size={self.patch_size}"
            )
        if self.dim < 1 or self.num_heads < 1 or self.dim % self.num_heads:
            raise ConfigError(f"dim={self.dim} must be divisible by num_heads={self.num_heads}")
        if self.pos_embed not in ("learned", "sincos2d"):
            raise ConfigError(f"pos_embed must be 'learned' or 'sincos2d', got {self.pos_embed!r}")
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ConfigError(f"drop_path_rate must be in [0, 1), got {self.drop_path_rate}")
        if self.pos_embed == "sincos2d" and self.dim % 4:
            raise ConfigError(f"pos_embed='sincos2d' needs dim divisible by 4, got dim={self.dim}")


# Architectures of the official checkpoints (``vit_small`` / ``vit_base`` of DINO, the encoder of
# ``mae_vit_base_patch16``), for :func:`attnlab.runs.official.load_official_vit`.
DINO_VIT_S16 = ImageViTConfig(patch_size=16, dim=384, depth=12, num_heads=6)
DINO_VIT_S8 = ImageViTConfig(patch_size=8, dim=384, depth=12, num_heads=6)
DINO_VIT_B16 = ImageViTConfig(patch_size=16, dim=768, depth=12, num_heads=12)
DINO_VIT_B8 = ImageViTConfig(patch_size=8, dim=768, depth=12, num_heads=12)
MAE_VIT_B16 = ImageViTConfig(patch_size=16, dim=768, depth=12, num_heads=12, pos_embed="sincos2d")
# The backbone the DINO and MAE teachers of 28 x 28 grey images share (presets dino-vit-p4, mae-vit-p4):
# a 7 x 7 grid of patch-4 tokens, ViT-Ti-like width (the docs' "ViT-p4"); DINO keeps learned
# positions, MAE its sincos table.
FMNIST_P4 = ImageViTConfig(img_size=28, patch_size=4, in_chans=1, dim=128, depth=6, num_heads=4)


def mae_sincos_table(grid: tuple[int, int], dim: int, *, cls_token: bool) -> torch.Tensor:
    """MAE's fixed table (1, [1 +] h*w, dim): [column part | row part] per token, a zero [CLS] row."""
    rows_first = sincos_pos_embed_2d(grid[0], grid[1], dim, dtype=torch.float64)  # (h, w, [row | col])
    half = dim // 2
    table = torch.cat([rows_first[..., half:], rows_first[..., :half]], dim=-1)  # MAE's column-first order
    table = table.reshape(1, grid[0] * grid[1], dim)  # (1, h*w, D), row-major tokens
    if cls_token:
        table = torch.cat([torch.zeros(1, 1, dim, dtype=table.dtype), table], dim=1)
    return table.float()  # MAE builds it in float64 numpy, then stores float32


def dino_interpolate(
    patch_table: torch.Tensor, source: tuple[int, int], target: tuple[int, int]
) -> torch.Tensor:
    """DINO's resize of a learned patch table (1, h0*w0, D) from grid ``source`` to ``target``."""
    (h0, w0), (h, w) = source, target
    dim = patch_table.shape[-1]
    table = patch_table.reshape(1, h0, w0, dim).permute(0, 3, 1, 2)  # (1, D, h0, w0)
    # DINO's +0.1 keeps floor(scale * h0) from falling below h; being a scale factor
    # (not a size), it also shifts where the bicubic kernel samples: reproduced as it is
    table = F.interpolate(table, scale_factor=((h + 0.1) / h0, (w + 0.1) / w0), mode="bicubic")
    return table.permute(0, 2, 3, 1).reshape(1, h * w, dim)  # (1, h*w, D)


class PatchEmbed(nn.Module):
    """Conv2d with kernel = stride = patch: (B, C, H, W) -> (B, h*w, D), row-major tokens."""

    def __init__(self, config: ImageViTConfig) -> None:
        super().__init__()
        c = config
        self.proj = nn.Conv2d(c.in_chans, c.dim, kernel_size=c.patch_size, stride=c.patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(images).flatten(2).transpose(1, 2)  # (B, D, h, w) -> (B, h*w, D)


class ImageViT(nn.Module):
    """Images (B, C, H, W) -> tokens (B, [1 +] N, D) after the final norm, [CLS] first when present;
    with ``keep`` (B, K) patch indices only those patches (MAE's visible ones) go through."""

    pos_embed: torch.Tensor

    def __init__(self, config: ImageViTConfig) -> None:
        super().__init__()
        config.check()
        self.config = c = config
        self.patch_size = c.patch_size
        self.num_prefix_tokens = int(c.cls_token)  # tokens before the patches (explanation helpers read it)
        self.patch_embed = PatchEmbed(c)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim)) if c.cls_token else None
        n = self.num_prefix_tokens + c.grid()[0] * c.grid()[1]
        if c.pos_embed == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(1, n, c.dim))  # (1, [1 +] N, D)
        else:  # persistent: official state dicts carry the (fixed) table
            self.register_buffer("pos_embed", mae_sincos_table(c.grid(), c.dim, cls_token=c.cls_token))
        self.blocks = vit_blocks(c.dim, c.depth, c.num_heads, c.mlp_ratio, c.qkv_bias, c.drop_path_rate)
        self.norm = LayerNorm6(c.dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """As DINO's ``_init_weights``: trunc_normal(0.02) for Linear weights, [CLS] and learned positions;
        zero biases; unit LayerNorms; the patch convolution keeps PyTorch's default (MAE re-inits its
        encoder with xavier-uniform in its own ``initialize_weights``)."""
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        if isinstance(self.pos_embed, nn.Parameter):
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def check_images(self, images: torch.Tensor) -> tuple[int, int]:
        """The patch grid of ``images`` (B, C, H, W), or a one-line InputError."""
        c = self.config
        if images.dim() != 4 or images.shape[1] != c.in_chans or not images.is_floating_point():
            raise InputError(
                f"images must be floating (B, C={c.in_chans}, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        h, w = images.shape[2:]
        if h == 0 or w == 0 or h % c.patch_size or w % c.patch_size:
            raise InputError(
                f"image size (H, W)={(h, w)} must be positive multiples of patch_size={c.patch_size}"
            )
        return (h // c.patch_size, w // c.patch_size)

    def positions(self, grid: tuple[int, int]) -> torch.Tensor:
        """(1, [1 +] h*w, D) table for ``grid``: the stored one at the configured size, else resized
        (learned: DINO's bicubic rule) or evaluated anew (sincos2d)."""
        c = self.config
        if grid == c.grid():
            return self.pos_embed
        if c.pos_embed == "sincos2d":
            return mae_sincos_table(grid, c.dim, cls_token=c.cls_token).to(self.pos_embed.device)
        p = self.num_prefix_tokens
        patches = dino_interpolate(self.pos_embed[:, p:], c.grid(), grid)  # (1, h*w, D)
        return torch.cat([self.pos_embed[:, :p], patches], dim=1)

    def prepare_tokens(self, images: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Embedded patches + positions, the kept ones only, [CLS] (+ its position) first: (B, [1 +] K, D)."""
        grid = self.check_images(images)
        x = self.patch_embed(images)  # (B, N, D)
        pos = self.positions(grid).to(x.dtype)
        p = self.num_prefix_tokens
        x = x + pos[:, p:]
        if keep is not None:
            x = gather_tokens(x, keep)  # (B, K, D)
        if self.cls_token is not None:
            cls = (self.cls_token + pos[:, :p]).expand(x.shape[0], -1, -1)  # (B, 1, D)
            x = torch.cat([cls, x], dim=1)  # (B, 1 + K, D)
        return x

    def forward(self, images: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        x = self.prepare_tokens(images, keep)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def intermediate_layers(self, images: torch.Tensor, n: int = 1) -> list[torch.Tensor]:
        """The outputs of the last ``n`` blocks, each through the final norm (DINO's
        ``get_intermediate_layers``, which its linear evaluation of ViT-S concatenates for n=4)."""
        if not 1 <= n <= len(self.blocks):
            raise InputError(f"n must be in [1, depth={len(self.blocks)}], got {n}")
        x = self.prepare_tokens(images)
        out = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i >= len(self.blocks) - n:
                out.append(self.norm(x))
        return out

    def last_selfattention(self, images: torch.Tensor) -> torch.Tensor:
        """(B, heads, L, L) softmax attention of the last block, [CLS] first (DINO's
        ``get_last_selfattention``; ``[:, :, 0, 1:]`` is the [CLS]-to-patch map of its figures)."""
        x = self.prepare_tokens(images)
        for block in self.blocks[:-1]:
            x = block(x)
        last = self.blocks[-1]
        if not isinstance(last, TransformerBlock):  # narrows the ModuleList's type
            raise TypeError(f"the last block is a {type(last).__name__}")
        return self_attention_weights(last, last.norm1(x))

    def cls_attention(self, images: torch.Tensor) -> torch.Tensor:
        """(B, heads, h, w): the last block's attention from [CLS] to every patch, on the patch grid
        (the maps of DINO's figures and ``visualize_attention.py``, before its thresholding)."""
        if self.cls_token is None:
            raise ConfigError("cls_attention needs a [CLS] token; this ViT has cls_token=False")
        grid = self.check_images(images)
        attn = self.last_selfattention(images)[:, :, 0, 1:]  # (B, H, h*w)
        return attn.reshape(*attn.shape[:2], *grid)  # (B, H, h, w)


def self_attention_weights(block: TransformerBlock, h: torch.Tensor) -> torch.Tensor:
    """The weights (B, heads, L, L) ``block``'s attention gives the normed tokens ``h`` (B, L, D),
    computed as the block's own recording path does (``attention_weights``)."""
    attn = block.attn
    B, L, D = h.shape
    q = attn.q_proj(h).view(B, L, attn.num_heads, attn.head_dim).transpose(1, 2)  # (B, H, L, Dh)
    k = attn.kv_proj(h)[..., :D].view(B, L, attn.num_heads, attn.head_dim).transpose(1, 2)  # keys first
    return attention_weights(q, k, None, attn.scale)


# Official DINO / MAE key names -> ours, after ``module.`` / ``backbone.`` prefixes are stripped and each
# fused ``attn.qkv`` is split into ``attn.q_proj`` (rows [:D]) and ``attn.kv_proj`` (rows [D:]) by
# :func:`attnlab.runs.official.load_official_vit`. The encoder's names are otherwise the official ones;
# what belongs to other parts is dropped: DINO's projection head, MAE's decoder and mask token.
OFFICIAL_KEYS: list[tuple[str, str | None]] = [
    (r"^head\.", None),
    (r"^(decoder_|mask_token$)", None),
]
