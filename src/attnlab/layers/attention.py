"""Multi-head scaled dot-product attention (Vaswani et al., NeurIPS 2017, arXiv:1706.03762).

Self-attention (``context=None``) and cross-/source-target attention (queries from
``x``, keys and values from ``context``) on one ``F.scaled_dot_product_attention``
call. Masks follow :mod:`attnlab.layers.masks`. Weight layout: ``q_proj`` (D -> D)
and ``kv_proj`` (Dkv -> 2D, keys first), so ``torch.nn.MultiheadAttention``'s
``in_proj_weight`` maps to ``q_proj.weight = W[:D]`` and ``kv_proj.weight = W[D:]``.

Inside :func:`attnlab.explain.capture` the layer also materialises
``softmax(QK^T / sqrt(d) + mask)`` per head and records it; outside, it costs one
attribute check.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import InputError
from attnlab.layers._recording import RecordsAttention
from attnlab.layers.masks import attention_weights, merge_masks


class MultiHeadAttention(RecordsAttention):
    """Multi-head attention over (B, L, D) tokens; returns (B, Lq, out_dim)."""

    def __init__(
        self,
        dim: int,
        *,
        num_heads: int = 8,
        kv_dim: int | None = None,
        out_dim: int | None = None,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        qk_scale: float | None = None,
    ) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise InputError(f"dim={dim} is not divisible by num_heads={num_heads}")
        if not 0.0 <= attn_drop < 1.0 or not 0.0 <= proj_drop < 1.0:
            raise InputError(f"dropout must be in [0, 1), got attn_drop={attn_drop}, proj_drop={proj_drop}")
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.kv_dim = kv_dim or dim
        self.scale = qk_scale if qk_scale is not None else self.head_dim**-0.5
        self.attn_drop = attn_drop
        self.q_proj = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv_proj = nn.Linear(self.kv_dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, out_dim or dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def _check(self, x: torch.Tensor, context: torch.Tensor | None) -> None:
        if x.dim() != 3 or x.shape[-1] != self.dim or not x.is_floating_point():
            raise InputError(f"x must be floating (B, L, {self.dim}), got {x.dtype} {tuple(x.shape)}")
        if context is not None and (
            context.dim() != 3 or context.shape[-1] != self.kv_dim or context.shape[0] != x.shape[0]
        ):
            raise InputError(
                f"context must be (B={x.shape[0]}, Lk, {self.kv_dim}), got {tuple(context.shape)}"
            )

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        *,
        attn_mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        self._check(x, context)
        src = x if context is None else context
        B, Lq, _ = x.shape
        Lk = src.shape[1]
        H, Dh = self.num_heads, self.head_dim
        q = self.q_proj(x).view(B, Lq, H, Dh).transpose(1, 2)  # (B, H, Lq, Dh)
        kv = self.kv_proj(src).view(B, Lk, 2, H, Dh).permute(2, 0, 3, 1, 4)  # (2, B, H, Lk, Dh)
        k, v = kv[0], kv[1]
        drop = self.attn_drop if self.training else 0.0
        only_causal = is_causal and attn_mask is None and key_padding_mask is None
        mask = None
        if not only_causal or self._recording:
            mask = merge_masks(
                attn_mask,
                key_padding_mask,
                is_causal=is_causal,
                batch=B,
                heads=H,
                q_len=Lq,
                k_len=Lk,
                dtype=q.dtype,
                device=q.device,
            )
        if self._recording_differentiable:
            weights = attention_weights(q, k, mask, self.scale)  # (B, H, Lq, Lk)
            self._record(weights)
            out = F.dropout(weights, drop, self.training) @ v  # (B, H, Lq, Dh)
        else:
            if self._recording:
                with torch.no_grad():  # recorded detached: no graph to build or keep
                    self._record(attention_weights(q, k, mask, self.scale))
            out = F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=None if only_causal else mask,
                dropout_p=drop,
                is_causal=only_causal,
                scale=self.scale,
            )
        out = out.transpose(1, 2).reshape(B, Lq, self.dim)  # (B, Lq, D)
        out = self.proj_drop(self.proj(out))  # (B, Lq, out_dim)
        return out
