"""Local 2D block self-attention of the Image Transformer (Parmar et al., ICML 2018,
arXiv:1802.05751, Sec. 3.2 and Fig. 2, right).

The image (B, H, W, dim) is cut into non-overlapping query blocks of ``query_block`` = (hq, wq)
pixels. Every query of a block attends to its memory block: the block extended by ``memory`` =
(hm, wm) pixels above it and wm to its left and right. Causally (``causal=True``, the decoder)
a query sees only keys that come before it, or are it, in the generation order: blocks in raster
order, pixels in raster order within a block. So within the memory block the rows above and the
block's own earlier pixels are seen, the columns to the right of the block in its own rows not.

Built on :class:`attnlab.layers.attention.MultiHeadAttention` (same projections and weight
layout). Queries and each block's keys and values are gathered by flat pixel index (a zero row
stands for the pixels outside the image), and one ``F.scaled_dot_product_attention`` call runs on
(B, heads x blocks, hq wq, (hm + hq)(wq + 2 wm)). :meth:`LocalBlockSelfAttention2d.dense_mask` is
the equivalent (HW, HW) mask over row-major pixels for ``MultiHeadAttention``; the tests check
equality against it. Inside ``capture`` the weights are recorded densely, (B, heads, HW, HW) over
row-major pixels, zero outside the memory blocks.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from attnlab.errors import InputError
from attnlab.layers.attention import MultiHeadAttention
from attnlab.layers.masks import attention_weights


class BlockLayout(NamedTuple):
    """Where every block's queries and keys are, as flat row-major pixel indices (HW: outside)."""

    queries: torch.Tensor  # (n, hq wq)
    keys: torch.Tensor  # (n, (hm + hq)(wq + 2 wm))
    mask: torch.Tensor  # (n, hq wq, (hm + hq)(wq + 2 wm)) bool: True where a query may attend


class LocalBlockSelfAttention2d(MultiHeadAttention):
    """Self-attention over an image (B, H, W, dim) within query blocks and their memory blocks."""

    def __init__(
        self,
        dim: int,
        *,
        query_block: tuple[int, int],
        memory: tuple[int, int],
        causal: bool = True,
        num_heads: int = 8,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__(
            dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop
        )
        if min(query_block) < 1 or min(memory) < 0 or len(query_block) != 2 or len(memory) != 2:
            raise InputError(
                f"need query_block (hq, wq) >= 1 and memory (hm, wm) >= 0, got {query_block}, {memory}"
            )
        self.query_block, self.memory, self.causal = tuple(query_block), tuple(memory), causal

    def _order(self, rows: torch.Tensor, cols: torch.Tensor, width: int) -> torch.Tensor:
        """Generation order of pixels (rows, cols): blocks in raster order, then raster within."""
        hq, wq = self.query_block
        blocks_per_row = -(-width // wq)
        block = (rows // hq) * blocks_per_row + cols // wq
        return block * hq * wq + (rows % hq) * wq + cols % wq

    def _allowed(
        self, qr: torch.Tensor, qc: torch.Tensor, kr: torch.Tensor, kc: torch.Tensor, width: int
    ) -> torch.Tensor:
        """True where the query at (qr, qc) may attend the key at (kr, kc) (broadcast shapes)."""
        (hq, wq), (hm, wm) = self.query_block, self.memory
        top, left = (qr // hq) * hq, (qc // wq) * wq  # the query block's first pixel
        inside = (kr >= top - hm) & (kr < top + hq) & (kc >= left - wm) & (kc < left + wq + wm)
        if not self.causal:
            return inside
        return inside & (self._order(kr, kc, width) <= self._order(qr, qc, width))

    def dense_mask(self, height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
        """(HW, HW) bool over row-major pixels, True where query i may attend key j."""
        r, c = torch.meshgrid(
            torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij"
        )
        r, c = r.reshape(-1), c.reshape(-1)  # (HW,)
        return self._allowed(r[:, None], c[:, None], r[None, :], c[None, :], width)

    def layout(self, height: int, width: int, device: torch.device | None = None) -> BlockLayout:
        (hq, wq), (hm, wm) = self.query_block, self.memory
        nh, nw = -(-height // hq), -(-width // wq)

        def ar(n: int) -> torch.Tensor:
            return torch.arange(n, device=device)

        # queries: block (i, j), pixel (a, b) in it -> (n, hq wq) rows and columns
        qr = (ar(nh)[:, None, None, None] * hq + ar(hq)[None, None, :, None]).expand(nh, nw, hq, wq)
        qc = (ar(nw)[None, :, None, None] * wq + ar(wq)[None, None, None, :]).expand(nh, nw, hq, wq)
        qr, qc = qr.reshape(nh * nw, hq * wq), qc.reshape(nh * nw, hq * wq)
        # keys: rows top - hm .. top + hq - 1, columns left - wm .. left + wq + wm - 1
        kh, kw = hm + hq, wq + 2 * wm
        kr = (ar(nh)[:, None, None, None] * hq - hm + ar(kh)[None, None, :, None]).expand(nh, nw, kh, kw)
        kc = (ar(nw)[None, :, None, None] * wq - wm + ar(kw)[None, None, None, :]).expand(nh, nw, kh, kw)
        kr, kc = kr.reshape(nh * nw, kh * kw), kc.reshape(nh * nw, kh * kw)

        def flat(r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            outside = (r < 0) | (r >= height) | (c < 0) | (c >= width)
            return torch.where(outside, height * width, r * width + c)

        keys = flat(kr, kc)
        mask = self._allowed(qr[:, :, None], qc[:, :, None], kr[:, None, :], kc[:, None, :], width)
        mask &= (keys < height * width)[:, None, :]  # pixels outside the image are never attended
        return BlockLayout(flat(qr, qc), keys, mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if x.dim() != 4:
            raise InputError(f"x must be an image of features (B, H, W, {self.dim}), got {tuple(x.shape)}")
        B, Hi, Wi, _ = x.shape
        self._check(x.reshape(B, Hi * Wi, -1), None)
        H, Dh, L = self.num_heads, self.head_dim, Hi * Wi
        lay = self.layout(Hi, Wi, x.device)
        n, lq, win = lay.mask.shape
        flat = x.reshape(B, L, self.dim)
        q = self.q_proj(flat).view(B, L, H, Dh).transpose(1, 2)  # (B, H, L, Dh)
        kv = self.kv_proj(flat).view(B, L, 2, H, Dh).permute(2, 0, 3, 1, 4)  # (2, B, H, L, Dh)
        q = F.pad(q, (0, 0, 0, 1))[:, :, lay.queries.reshape(-1)]  # (B, H, n lq, Dh); row L: outside
        kv = F.pad(kv, (0, 0, 0, 1))[:, :, :, lay.keys.reshape(-1)]  # (2, B, H, n win, Dh)
        q, k, v = q.view(B, H, n, lq, Dh), kv[0].view(B, H, n, win, Dh), kv[1].view(B, H, n, win, Dh)
        drop = self.attn_drop if self.training else 0.0
        if self._recording:
            weights = attention_weights(q, k, lay.mask, self.scale)  # (B, H, n, lq, win)
            self._record(self._dense(weights if self._recording_differentiable else weights.detach(), lay, L))
        if self._recording_differentiable:
            out = F.dropout(weights, drop, self.training) @ v  # (B, H, n, lq, Dh)
        else:  # 4D inputs keep SDPA on its fused kernel (as the 1D layer)
            out = F.scaled_dot_product_attention(
                q.reshape(B, H * n, lq, Dh),
                k.reshape(B, H * n, win, Dh),
                v.reshape(B, H * n, win, Dh),
                attn_mask=lay.mask.expand(H, n, lq, win).reshape(1, H * n, lq, win),
                dropout_p=drop,
                scale=self.scale,
            )
        # scatter the block queries back to their pixels; padding queries land on row L, dropped
        out = out.reshape(B, H, n * lq, Dh).transpose(1, 2).reshape(B, n * lq, self.dim)
        image = out.new_zeros(B, L + 1, self.dim).index_copy(1, lay.queries.reshape(-1), out)
        return self.proj_drop(self.proj(image[:, :L])).view(B, Hi, Wi, self.dim)

    def _dense(self, weights: torch.Tensor, lay: BlockLayout, length: int) -> torch.Tensor:
        """(B, H, n, lq, win) block weights -> (B, H, HW, HW), zero outside the memory blocks."""
        B, H = weights.shape[:2]
        dense = weights.new_zeros(length + 1, length + 1, B, H)  # row and column HW: outside the image
        rows = lay.queries[:, :, None].expand_as(lay.mask)  # (n, lq, win)
        cols = lay.keys[:, None, :].expand_as(lay.mask)
        masked = weights * lay.mask  # keys outside the image all map to column HW; keep them at 0
        dense = dense.index_put((rows, cols), masked.permute(2, 3, 4, 0, 1))  # values (n, lq, win, B, H)
        return dense.permute(2, 3, 0, 1)[:, :, :length, :length]
