"""Luong attention: global and local (local-m, local-p) attention with dot, general or concat scores.

Luong, Pham & Manning, "Effective Approaches to Attention-based Neural Machine Translation",
EMNLP 2015, arXiv:1508.04025 (reference implementation: the authors' Matlab/C++ code; OpenNMT's
``GlobalAttention`` for the scores). For a decoder state h_t (query) and encoder states h̄_s
(keys):

    score(h_t, h̄_s) = h_t^T h̄_s                       (dot)
                     = h_t^T W_a h̄_s                   (general)
                     = v_a^T tanh(W_a [h_t; h̄_s])      (concat)
    global:  a_t(s) = softmax_s score(h_t, h̄_s) over all source positions
    local-m: p_t = t; a_t = softmax over the window |s - p_t| <= D, 0 outside
    local-p: p_t = S sigmoid(v_p^T tanh(W_p h_t)) (S: the source length, per sequence when
             padded); a_t(s) = softmax over the window (s) * exp(-(s - p_t)^2 / (2 sigma^2)),
             sigma = D / 2 (Eqs. 9-10), so local-p weights need not sum to 1
    context c_t = sum_s a_t(s) h̄_s

The attentional hidden state h̃_t = tanh(W_c [c_t; h_t]) belongs to the decoder, not here.
Deviations: none in the equations; the window of local attention is the paper's
[p_t - D, p_t + D] over integer positions s (p_t real for local-p), positions from 0.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import InputError
from attnlab.layers._recording import RecordsAttention
from attnlab.layers.additive import check_query_keys_values
from attnlab.layers.masks import masked_softmax

Score = Literal["dot", "general", "concat"]
Window = Literal["global", "local-m", "local-p"]


class LuongAttention(RecordsAttention):
    """Luong attention of queries (B, Lq, dim) or (B, dim) over keys (B, Lk, key_dim).

    Returns the context (B, Lq, Dv), or (B, Dv) for a (B, dim) query; ``values`` default to the
    keys. ``key_padding_mask`` (B, Lk) is True at padding keys (weight 0). Local-m needs the
    decoder step of each query: ``step`` (an int, the step of the first query; queries of a
    (B, Lq, dim) call are steps step, step + 1, ...), default 0. Records the weights a_t(s) as
    (B, Lq, Lk), zero outside the window; ``positions`` holds the last call's p_t (B, Lq).
    """

    def __init__(
        self,
        dim: int,
        *,
        key_dim: int | None = None,
        score: Score = "general",
        window: Window = "global",
        half_width: int = 10,
        attn_dim: int | None = None,
        attn_drop: float = 0.0,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.key_dim = dim if key_dim is None else key_dim
        self.attn_dim = dim if attn_dim is None else attn_dim
        if min(dim, self.key_dim, self.attn_dim) < 1 or half_width < (1 if window == "local-p" else 0):
            # local-p's Gaussian has sigma = half_width / 2, which must not be 0
            raise InputError(
                f"need dims >= 1 and half_width >= 0 (>= 1 for local-p), "
                f"got {dim}, {self.key_dim}, {half_width}"
            )
        if score not in get_args(Score) or window not in get_args(Window):
            raise InputError(f"score must be one of {get_args(Score)} and window one of {get_args(Window)}")
        if score == "dot" and self.key_dim != dim:
            raise InputError(f"the dot score needs key_dim == dim, got {self.key_dim} and {dim}")
        if not 0.0 <= attn_drop < 1.0:
            raise InputError(f"attn_drop must be in [0, 1), got {attn_drop}")
        self.score, self.window, self.half_width = score, window, half_width
        self.w_a = (
            nn.Linear(self.key_dim, dim, bias=False)
            if score == "general"
            else nn.Linear(dim + self.key_dim, self.attn_dim, bias=False)
            if score == "concat"
            else None
        )
        self.v_a = nn.Linear(self.attn_dim, 1, bias=False) if score == "concat" else None
        self.w_p = nn.Linear(dim, self.attn_dim, bias=False) if window == "local-p" else None
        self.v_p = nn.Linear(self.attn_dim, 1, bias=False) if window == "local-p" else None
        self.attn_drop = nn.Dropout(attn_drop)
        self.positions: torch.Tensor | None = None

    def logits(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """score(h_t, h̄_s): (B, Lq, dim) x (B, Lk, key_dim) -> (B, Lq, Lk)."""
        if self.score == "dot":
            return query @ keys.transpose(1, 2)
        if self.score == "general":
            assert self.w_a is not None
            return query @ self.w_a(keys).transpose(1, 2)
        assert self.w_a is not None and self.v_a is not None
        # W_a [h_t; h̄_s] = W_q h_t + W_k h̄_s: the concatenation split, so no (B, Lq, Lk, dim + key_dim) copy
        w_q, w_k = self.w_a.weight[:, : self.dim], self.w_a.weight[:, self.dim :]  # (A, dim), (A, key_dim)
        hidden = torch.tanh(F.linear(query, w_q)[:, :, None] + F.linear(keys, w_k)[:, None])  # (B, Lq, Lk, A)
        return self.v_a(hidden).squeeze(-1)  # (B, Lq, Lk)

    def _positions(self, query: torch.Tensor, lengths: torch.Tensor, step: int) -> torch.Tensor:
        """p_t (B, Lq): the step itself (local-m) or S sigmoid(v_p^T tanh(W_p h_t)) (local-p)."""
        if self.window == "local-m":
            t = torch.arange(step, step + query.shape[1], device=query.device, dtype=query.dtype)
            return t.expand(query.shape[0], -1)
        assert self.w_p is not None and self.v_p is not None
        fraction = torch.sigmoid(self.v_p(torch.tanh(self.w_p(query)))).squeeze(-1)  # (B, Lq)
        return lengths[:, None].to(query.dtype) * fraction

    def _check(
        self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor | None
    ) -> None:
        check_query_keys_values(query, keys, values, dim=self.dim, key_dim=self.key_dim)
        if mask is not None and (mask.dtype != torch.bool or tuple(mask.shape) != tuple(keys.shape[:2])):
            raise InputError(
                f"key_padding_mask must be bool (B, Lk)={tuple(keys.shape[:2])}, "
                f"got {mask.dtype} {tuple(mask.shape)}"
            )

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor | None = None,
        *,
        key_padding_mask: torch.Tensor | None = None,
        step: int = 0,
    ) -> torch.Tensor:
        values = keys if values is None else values
        self._check(query, keys, values, key_padding_mask)
        single = query.dim() == 2
        q = query[:, None, :] if single else query  # (B, Lq, dim)
        B, Lq, Lk = q.shape[0], q.shape[1], keys.shape[1]
        padding = (
            key_padding_mask[:, None, :].expand(B, Lq, Lk)  # (B, Lq, Lk)
            if key_padding_mask is not None
            else torch.zeros(B, Lq, Lk, dtype=torch.bool, device=q.device)
        )
        logits = self.logits(q, keys)  # (B, Lq, Lk)
        if self.window == "global":
            self.positions = None
            weights = masked_softmax(logits, padding if key_padding_mask is not None else None)
        else:
            lengths = Lk - padding[:, 0].sum(-1) if key_padding_mask is not None else torch.full((B,), Lk)
            p = self._positions(q, lengths.to(q.device), step)  # (B, Lq)
            self.positions = p.detach()
            s = torch.arange(Lk, device=q.device, dtype=q.dtype)  # source positions
            distance = s[None, None, :] - p[:, :, None]  # (B, Lq, Lk)
            weights = masked_softmax(logits, padding | (distance.abs() > self.half_width))
            if self.window == "local-p":
                sigma = self.half_width / 2
                weights = weights * torch.exp(-distance.square() / (2 * sigma**2))
        self._record(weights)
        context: torch.Tensor = self.attn_drop(weights) @ values  # (B, Lq, Dv)
        return context[:, 0] if single else context
