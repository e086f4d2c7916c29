"""SAM's image encoder: a plain ViT with windowed and global attention, decomposed relative
positions and a convolutional neck (Kirillov et al. 2023, arXiv:2304.02643; the backbone follows
ViTDet, Li et al. 2022, arXiv:2203.16527).

Reference: facebookresearch/segment-anything ``modeling/image_encoder.py`` (``ImageEncoderViT``,
``Block``, ``Attention``, ``window_partition``, ``get_rel_pos``, ``add_decomposed_rel_pos``).

Tokens stay on their (H', W') grid, channel-last. Each block is pre-norm; blocks not listed in
``global_attn_indexes`` attend inside non-overlapping ``window_size`` x ``window_size`` windows
(the grid zero-padded bottom-right to a multiple of the window first, cropped back after).
Attention logits get a decomposed relative-position bias: for query (i, j) and key (k, l),
``q . R_h[i - k] + q . R_w[j - l]`` with the unscaled query, added after ``q k^T / sqrt(d)``.

Deviations: none in what is computed. The bias goes into one ``scaled_dot_product_attention``
call as an additive mask instead of an eager softmax (the same numbers; faster, and the
weights are materialised only inside :func:`attnlab.explain.capture`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.layers._recording import RecordsAttention
from attnlab.layers.masks import attention_weights
from attnlab.models.sam.common import LayerNorm2d, MLPBlock


@dataclass
class ImageEncoderConfig:
    img_size: int = 1024
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    out_chans: int = 256
    qkv_bias: bool = True
    use_abs_pos: bool = True
    use_rel_pos: bool = True
    window_size: int = 14
    global_attn_indexes: tuple[int, ...] = field(default=(2, 5, 8, 11))

    @property
    def grid(self) -> int:
        """Tokens per side: the image embedding is (out_chans, grid, grid)."""
        return self.img_size // self.patch_size

    def check(self) -> None:
        if self.patch_size < 1 or self.img_size % self.patch_size:
            raise ConfigError(f"img_size={self.img_size} is not a multiple of patch_size={self.patch_size}")
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}")
        bad = [i for i in self.global_attn_indexes if not 0 <= i < self.depth]
        if bad:
            raise ConfigError(f"global_attn_indexes {bad} are not blocks of a depth-{self.depth} encoder")


def window_partition(x: torch.Tensor, window: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(B, H, W, C) -> (B * nW, window, window, C), zero-padded bottom-right; returns the padded size."""
    B, H, W, C = x.shape
    pad_h, pad_w = (window - H % window) % window, (window - W % window) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    Hp, Wp = H + pad_h, W + pad_w
    x = x.view(B, Hp // window, window, Wp // window, window, C)
    x = x.permute(0, 1, 3, 2, 4, 5)  # (B, Hp/w, Wp/w, w, w, C)
    return x.reshape(-1, window, window, C), (Hp, Wp)


def window_unpartition(
    windows: torch.Tensor, window: int, padded: tuple[int, int], size: tuple[int, int]
) -> torch.Tensor:
    """(B * nW, window, window, C) -> (B, H, W, C), padding cropped."""
    Hp, Wp = padded
    B = windows.shape[0] // (Hp * Wp // window // window)
    x = windows.view(B, Hp // window, Wp // window, window, window, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(B, Hp, Wp, -1)  # (B, Hp, Wp, C)
    return x[:, : size[0], : size[1], :].contiguous()


def relative_table(q_size: int, k_size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """The (q_size, k_size, C) rows of ``rel_pos`` for every query-key offset along one axis.

    A table of another length than ``2 * max(q, k) - 1`` is resized linearly first, and unequal
    query and key lengths are compared on the longer one's scale (as the reference does)."""
    length = 2 * max(q_size, k_size) - 1
    if rel_pos.shape[0] != length:
        rel_pos = (
            F.interpolate(rel_pos.t()[None], size=length, mode="linear")[0].t()  # (length, C)
        )
    q_coords = torch.arange(q_size, device=rel_pos.device)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size, device=rel_pos.device)[None, :] * max(q_size / k_size, 1.0)
    offsets = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return rel_pos[offsets.long()]


def decomposed_rel_pos_bias(
    q: torch.Tensor, rel_pos_h: torch.Tensor, rel_pos_w: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """Additive bias (N, H*W, H*W) for queries q (N, H*W, C) on an H x W grid attending to the same grid."""
    H, W = size
    N, _, C = q.shape
    Rh = relative_table(H, H, rel_pos_h)  # (H, H, C)
    Rw = relative_table(W, W, rel_pos_w)  # (W, W, C)
    r_q = q.reshape(N, H, W, C)
    rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, Rh)  # (N, H, W, H_k)
    rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, Rw)  # (N, H, W, W_k)
    bias = rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]  # (N, H, W, H_k, W_k)
    return bias.reshape(N, H * W, H * W)


class EncoderAttention(RecordsAttention):
    """Multi-head self-attention over a (B, H, W, C) grid with a fused ``qkv`` and optional
    decomposed relative positions (official names: ``qkv``, ``proj``, ``rel_pos_h``, ``rel_pos_w``)."""

    def __init__(
        self, dim: int, *, num_heads: int, qkv_bias: bool, use_rel_pos: bool, input_size: tuple[int, int]
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, self.head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, self.head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        nh, hd = self.num_heads, self.head_dim
        qkv = self.qkv(x).reshape(B, H * W, 3, nh, hd).permute(2, 0, 3, 1, 4)  # (3, B, nh, L, hd)
        q, k, v = qkv.unbind(0)  # (B, nh, L, hd) each
        bias = None
        if self.use_rel_pos:
            flat_q = q.reshape(B * nh, H * W, hd)  # (B*nh, L, hd)
            bias = decomposed_rel_pos_bias(flat_q, self.rel_pos_h, self.rel_pos_w, (H, W))
            bias = bias.view(B, nh, H * W, H * W)  # (B, nh, L, L)
        if self._recording_differentiable:
            weights = attention_weights(q, k, bias, self.scale)  # (B, nh, L, L)
            self._record(weights)
            out = weights @ v
        else:
            if self._recording:
                with torch.no_grad():
                    self._record(attention_weights(q, k, bias, self.scale))
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)  # (B, nh, L, hd)
        out = out.permute(0, 2, 1, 3).reshape(B, H, W, C)  # (B, H, W, C)
        return self.proj(out)


class EncoderBlock(nn.Module):
    """Pre-norm block; ``window_size`` 0 means global attention over the whole grid."""

    def __init__(self, config: ImageEncoderConfig, window_size: int) -> None:
        super().__init__()
        dim = config.embed_dim
        self.window_size = window_size
        size = (window_size, window_size) if window_size else (config.grid, config.grid)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = EncoderAttention(
            dim,
            num_heads=config.num_heads,
            qkv_bias=config.qkv_bias,
            use_rel_pos=config.use_rel_pos,
            input_size=size,
        )
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, int(dim * config.mlp_ratio), nn.GELU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window_size:
            H, W = x.shape[1], x.shape[2]
            x, padded = window_partition(x, self.window_size)  # (B*nW, w, w, C)
            x = self.attn(x)
            x = window_unpartition(x, self.window_size, padded, (H, W))  # (B, H, W, C)
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, config: ImageEncoderConfig) -> None:
        super().__init__()
        p = config.patch_size
        self.proj = nn.Conv2d(config.in_chans, config.embed_dim, kernel_size=p, stride=p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)  # (B, H', W', C)


class ImageEncoderViT(nn.Module):
    """(B, in_chans, img_size, img_size) normalised, padded images -> (B, out_chans, grid, grid)."""

    def __init__(self, config: ImageEncoderConfig) -> None:
        super().__init__()
        config.check()
        self.config = config
        self.patch_embed = PatchEmbed(config)
        self.pos_embed: nn.Parameter | None = None
        if config.use_abs_pos:
            self.pos_embed = nn.Parameter(torch.zeros(1, config.grid, config.grid, config.embed_dim))
        self.blocks = nn.ModuleList(
            EncoderBlock(config, 0 if i in config.global_attn_indexes else config.window_size)
            for i in range(config.depth)
        )
        out = config.out_chans
        self.neck = nn.Sequential(
            nn.Conv2d(config.embed_dim, out, kernel_size=1, bias=False),
            LayerNorm2d(out),
            nn.Conv2d(out, out, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if x.dim() != 4 or x.shape[1:] != (c.in_chans, c.img_size, c.img_size) or not x.is_floating_point():
            raise InputError(
                f"the image encoder takes float (B, {c.in_chans}, {c.img_size}, {c.img_size}) images "
                f"(normalised and padded: Sam.preprocess), got {x.dtype} {tuple(x.shape)}"
            )
        x = self.patch_embed(x)  # (B, H', W', C)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.neck(x.permute(0, 3, 1, 2))  # (B, out_chans, H', W')
