"""Attentive pooling: learned queries cross-attend to a set of tokens.

The attentive probe of V-JEPA (Bardes et al., "Revisiting Feature Prediction for
Learning Visual Representations from Video", 2024, arXiv:2404.08471), following the
reference implementation ``AttentivePooler`` / ``AttentiveClassifier`` in
facebookresearch/jepa (``src/models/attentive_pooler.py``) and facebookresearch/vjepa2.

Cross-attention block (as the official ``CrossAttentionBlock``)::

    q = q + CrossAttn(q, LN(x))        # the queries themselves are not normalised
    q = q + MLP(LN(q))

Implementation details and deviations:
* ``depth`` adds ``depth - 1`` pre-norm self-attention blocks
  (:class:`attnlab.layers.transformer.TransformerBlock`). The two official codes
  disagree on where: facebookresearch/jepa (V-JEPA 1) runs them *after* the
  cross-attention on the pooled queries (with one query that self-attention is a
  softmax over a single key, i.e. an MLP of the value projection), while
  facebookresearch/vjepa2 runs them *before* it on the input tokens. We default to the
  latter (``self_attn_on="tokens"``) because it is the one where the blocks attend to
  anything; ``self_attn_on="queries"`` reproduces V-JEPA 1's order exactly.
* Initialisation as the official code: truncated normal (std ``init_std``) for every
  linear weight and the query tokens, zero biases, unit LayerNorms, and the output
  projections of each block's attention and MLP divided by sqrt(2 * layer), layer
  counted in processing order from 1 (the two official codes differ slightly in which
  weights they rescale; this is the GPT-2 style rule both approximate).
* ``cross_out_proj=False`` reproduces facebookresearch/jepa exactly: its ``CrossAttention``
  defines an output projection ``proj`` but never applies it, so the heads' concatenated
  output goes straight into the residual. attnlab's default applies it (as vjepa2 does).
* The official ``complete_block=False`` variant (a bare cross-attention without MLP)
  is not provided.
* ``key_padding_mask`` (True = padding) is not in the official code; it lets a probe
  pool over variable-length token sets. A sample whose tokens are all padding is an
  error rather than a NaN.
* Attention is :class:`attnlab.layers.attention.MultiHeadAttention` (separate ``q_proj``
  and ``kv_proj``; the official ``Attention.qkv`` splits as ``W[:D]`` and ``W[D:]``).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.layers.attention import MultiHeadAttention
from attnlab.layers.transformer import Mlp, TransformerBlock


class CrossAttentionBlock(nn.Module):
    """Queries (B, K, D) attend to tokens (B, N, kv_dim); returns updated queries (B, K, D).

    ``q = q + MHA(q, LN(x)); q = q + MLP(LN(q))`` (V-JEPA's ``CrossAttentionBlock``).
    The attention weights are recorded by ``self.attn`` as (B, H, K, N).
    """

    def __init__(
        self,
        dim: int,
        *,
        num_heads: int = 8,
        kv_dim: int | None = None,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        act_layer: type[nn.Module] = nn.GELU,
        out_proj: bool = True,
    ) -> None:
        super().__init__()
        if mlp_ratio <= 0:
            raise InputError(f"mlp_ratio must be positive, got {mlp_ratio}")
        kv_dim = kv_dim or dim
        self.norm1 = norm_layer(kv_dim)
        self.attn = MultiHeadAttention(
            dim,
            num_heads=num_heads,
            kv_dim=kv_dim,
            qkv_bias=qkv_bias,
            attn_drop=attn_drop,
            proj_drop=proj_drop,
        )
        if not out_proj:  # facebookresearch/jepa's CrossAttention never applies its proj
            self.attn.proj = nn.Identity()  # type: ignore[assignment]  # a Linear slot, any module fits
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, mlp_ratio=mlp_ratio, act_layer=act_layer, drop=proj_drop)

    def forward(
        self, queries: torch.Tensor, tokens: torch.Tensor, *, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        queries = queries + self.attn(queries, self.norm1(tokens), key_padding_mask=key_padding_mask)
        return queries + self.mlp(self.norm2(queries))


def _check_tokens(x: torch.Tensor, dim: int, key_padding_mask: torch.Tensor | None) -> None:
    if x.dim() != 3 or x.shape[-1] != dim or x.shape[1] == 0 or not x.is_floating_point():
        raise InputError(f"tokens must be floating (B, N>0, {dim}), got {x.dtype} {tuple(x.shape)}")
    if key_padding_mask is None:
        return
    if key_padding_mask.dtype != torch.bool or key_padding_mask.shape != x.shape[:2]:
        raise InputError(
            f"key_padding_mask must be bool (B, N)={tuple(x.shape[:2])}, "
            f"got {key_padding_mask.dtype} {tuple(key_padding_mask.shape)}"
        )
    if bool(key_padding_mask.all(dim=1).any()):
        raise InputError("key_padding_mask marks every token of some sample as padding")


class AttentivePooler(nn.Module):
    """Pool (B, N, D) tokens into (B, num_queries, D) with learned query tokens.

    Attention is recorded by the inner layers: ``cross_block.attn`` as (B, H, Q, N)
    and, for ``depth > 1``, ``blocks.i.attn`` as (B, H, N, N) on tokens or (B, H, Q, Q)
    on queries, depending on ``self_attn_on`` (see the module docstring).
    """

    def __init__(
        self,
        dim: int,
        *,
        num_queries: int = 1,
        num_heads: int = 12,
        depth: int = 1,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        act_layer: type[nn.Module] = nn.GELU,
        init_std: float = 0.02,
        self_attn_on: Literal["tokens", "queries"] = "tokens",
        cross_out_proj: bool = True,
    ) -> None:
        super().__init__()
        if num_queries < 1 or depth < 1:
            raise InputError(f"num_queries and depth must be >= 1, got {num_queries}, {depth}")
        if self_attn_on not in ("tokens", "queries"):
            raise InputError(f"self_attn_on must be 'tokens' or 'queries', got {self_attn_on!r}")
        self.dim = dim
        self.self_attn_on = self_attn_on
        self.query_tokens = nn.Parameter(torch.zeros(1, num_queries, dim))
        self.cross_block = CrossAttentionBlock(
            dim,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            attn_drop=attn_drop,
            proj_drop=proj_drop,
            norm_layer=norm_layer,
            act_layer=act_layer,
            out_proj=cross_out_proj,
        )
        self.blocks = nn.ModuleList(
            TransformerBlock(
                dim,
                num_heads=num_heads,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                attn_drop=attn_drop,
                proj_drop=proj_drop,
                norm_layer=norm_layer,
                act_layer=act_layer,
            )
            for _ in range(depth - 1)
        )
        self._init_weights(init_std)

    def _init_weights(self, std: float) -> None:
        nn.init.trunc_normal_(self.query_tokens, std=std)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # residual branches deeper in the stack start smaller (official _rescale_blocks)
        ordered = [*self.blocks, self.cross_block]
        if self.self_attn_on == "queries":
            ordered = [self.cross_block, *self.blocks]
        with torch.no_grad():
            for layer, block in enumerate(ordered, 1):
                if isinstance(block.attn.proj, nn.Linear):
                    block.attn.proj.weight.div_(math.sqrt(2.0 * layer))
                block.mlp.fc2.weight.div_(math.sqrt(2.0 * layer))

    def forward(self, x: torch.Tensor, *, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        _check_tokens(x, self.dim, key_padding_mask)
        if self.self_attn_on == "tokens":
            for block in self.blocks:
                x = block(x, key_padding_mask=key_padding_mask)  # (B, N, D)
        q = self.query_tokens.expand(x.shape[0], -1, -1)  # (B, Q, D)
        q = self.cross_block(q, x, key_padding_mask=key_padding_mask)  # (B, Q, D)
        if self.self_attn_on == "queries":
            for block in self.blocks:
                q = block(q)  # (B, Q, D)
        return q


class AttentiveClassifier(nn.Module):
    """V-JEPA's attentive probe: one pooled token (B, D) -> linear head -> logits (B, num_classes).

    Recorded attention: ``pooler.cross_block.attn`` (B, H, 1, N), see :class:`AttentivePooler`.
    """

    def __init__(
        self,
        dim: int,
        *,
        num_classes: int,
        num_heads: int = 12,
        depth: int = 1,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        act_layer: type[nn.Module] = nn.GELU,
        init_std: float = 0.02,
        self_attn_on: Literal["tokens", "queries"] = "tokens",
        cross_out_proj: bool = True,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise InputError(f"num_classes must be >= 1, got {num_classes}")
        self.pooler = AttentivePooler(
            dim,
            num_queries=1,
            num_heads=num_heads,
            depth=depth,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            attn_drop=attn_drop,
            proj_drop=proj_drop,
            norm_layer=norm_layer,
            act_layer=act_layer,
            init_std=init_std,
            self_attn_on=self_attn_on,
            cross_out_proj=cross_out_proj,
        )
        # the head keeps PyTorch's default init, as the official classifier
        self.linear = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor, *, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        pooled = self.pooler(x, key_padding_mask=key_padding_mask)[:, 0]  # (B, D)
        return self.linear(pooled)  # (B, num_classes)
