"""Local 1D block self-attention of the Image Transformer (Parmar et al., ICML 2018, arXiv:1802.05751).

The sequence (an image flattened in raster order, or any sequence) is cut into non-overlapping
query blocks of ``query_block`` positions; every query of a block attends to its own block and to
the ``memory`` positions just before it (the paper's memory block), causally (``causal=True``,
the decoder: a position never sees a later one) or not. With block-local keys the logits of
one layer cost L (query_block + memory) numbers instead of L^2.

Built on :class:`attnlab.layers.attention.MultiHeadAttention` (same projections and weights
layout): keys and values are cut into overlapping windows (views of the left-padded
sequence), and one ``F.scaled_dot_product_attention`` call runs on (B, H, blocks, query_block,
memory + query_block). :meth:`LocalBlockSelfAttention1d.dense_mask` is the equivalent (L, L) mask
for ``MultiHeadAttention``, which the tests check equality against. Inside ``capture`` the weights
are recorded densely, (B, H, L, L), zero outside the blocks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attnlab.errors import InputError
from attnlab.layers.attention import MultiHeadAttention
from attnlab.layers.masks import attention_weights


class LocalBlockSelfAttention1d(MultiHeadAttention):
    """Self-attention over (B, L, dim) within query blocks and the memory before them."""

    def __init__(
        self,
        dim: int,
        *,
        query_block: int,
        memory: int,
        causal: bool = True,
        num_heads: int = 8,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__(
            dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop
        )
        if query_block < 1 or memory < 0:
            raise InputError(f"need query_block >= 1 and memory >= 0, got {query_block}, {memory}")
        self.query_block, self.memory, self.causal = query_block, memory, causal

    def dense_mask(self, length: int, device: torch.device | None = None) -> torch.Tensor:
        """(L, L) bool, True where query i may attend key j: the same attention as a dense layer."""
        i = torch.arange(length, device=device)[:, None]
        j = torch.arange(length, device=device)[None, :]
        start = (i // self.query_block) * self.query_block  # first position of i's query block
        allowed = (j >= start - self.memory) & (j < start + self.query_block)
        return allowed & (j <= i) if self.causal else allowed

    def _block_mask(self, length: int, blocks: int, device: torch.device) -> torch.Tensor:
        """(blocks, query_block, memory + query_block) bool for the windows of :meth:`forward`."""
        lq, lm = self.query_block, self.memory
        i = (
            torch.arange(blocks, device=device)[:, None, None] * lq
            + torch.arange(lq, device=device)[None, :, None]
        )
        j = (
            torch.arange(blocks, device=device)[:, None, None] * lq
            - lm
            + torch.arange(lm + lq, device=device)
        )
        allowed = (j >= 0) & (j < length)  # the padding before the start and after the end
        return allowed & (j <= i) if self.causal else allowed

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        self._check(x, None)
        B, L, _ = x.shape
        H, Dh, lq, lm = self.num_heads, self.head_dim, self.query_block, self.memory
        blocks = -(-L // lq)
        tail = blocks * lq - L  # padding that completes the last query block
        q = self.q_proj(x).view(B, L, H, Dh).transpose(1, 2)  # (B, H, L, Dh)
        q = F.pad(q, (0, 0, 0, tail)).view(B, H, blocks, lq, Dh)  # (B, H, n, lq, Dh)
        kv = self.kv_proj(x).view(B, L, 2, H, Dh).permute(2, 0, 3, 1, 4)  # (2, B, H, L, Dh)
        kv = F.pad(kv, (0, 0, lm, tail))  # (2, B, H, lm + n lq, Dh)
        windows = kv.unfold(3, lm + lq, lq).transpose(-1, -2)  # (2, B, H, n, lm + lq, Dh)
        k, v = windows[0], windows[1]
        mask = self._block_mask(L, blocks, x.device)  # (n, lq, lm + lq)
        drop = self.attn_drop if self.training else 0.0
        if self._recording:
            weights = attention_weights(q, k, mask, self.scale)  # (B, H, n, lq, lm + lq)
            self._record(self._dense(weights.detach() if not self._recording_differentiable else weights, L))
        if self._recording_differentiable:
            out = F.dropout(weights, drop, self.training) @ v  # (B, H, n, lq, Dh)
        else:
            # 4D (B, H n, ...) inputs: with a 5D batch SDPA falls back to its math kernel, which keeps
            # the (.., lq, lm + lq) logits and probabilities (3x the dense fused kernel's peak memory)
            n, w = blocks, lm + lq
            out = F.scaled_dot_product_attention(
                q.reshape(B, H * n, lq, Dh),
                k.reshape(B, H * n, w, Dh),
                v.reshape(B, H * n, w, Dh),
                attn_mask=mask.expand(H, n, lq, w).reshape(1, H * n, lq, w),
                dropout_p=drop,
                scale=self.scale,
            )
        out = (
            out.reshape(B, H, blocks * lq, Dh)[:, :, :L].transpose(1, 2).reshape(B, L, self.dim)
        )  # (B, L, D)
        return self.proj_drop(self.proj(out))

    def _dense(self, weights: torch.Tensor, length: int) -> torch.Tensor:
        """(B, H, n, lq, lm + lq) block weights -> (B, H, L, L), zero outside the blocks."""
        B, H, n, lq, width = weights.shape
        dense = weights.new_zeros(B, H, n * lq, self.memory + n * lq + width)  # key axis shifted by memory
        for b in range(n):  # block b's keys start at b lq - memory, i.e. column b lq after the shift
            dense[:, :, b * lq : (b + 1) * lq, b * lq : b * lq + width] = weights[:, :, b]
        return dense[:, :, :length, self.memory : self.memory + length]
