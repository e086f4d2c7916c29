"""Additive attention: Bahdanau alignment and the soft spatial attention of Show, Attend and Tell.

* :class:`AdditiveAttention`: Bahdanau, Cho & Bengio, "Neural Machine Translation by
  Jointly Learning to Align and Translate", ICLR 2015, arXiv:1409.0473. The score is
  a one-hidden-layer MLP, ``e_ij = v^T tanh(W_q q_i + W_k k_j + b)``,
  ``a_ij = softmax_j(e_ij)``, context ``c_i = sum_j a_ij v_j``.
* :class:`SpatialSoftAttention`: Xu et al., "Show, Attend and Tell", ICML 2015,
  arXiv:1502.03044, soft ("deterministic") attention over the L = H*W locations of a
  CNN feature map given the decoder state h, with the gating scalar
  ``beta = sigmoid(f_beta(h))`` of Sec. 4.2.1, and :func:`doubly_stochastic_penalty`,
  the regulariser of Eq. (14). Reference implementation: kelvinxu/arctic-captions.

Deviation: the score MLP has no output bias (``c_tt`` in arctic-captions). A
constant added to every logit cancels in the softmax, so it can never learn.
"""

from __future__ import annotations

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.layers._recording import RecordsAttention
from attnlab.layers.masks import masked_softmax


def _check_sizes(**sizes: int) -> None:
    for name, size in sizes.items():
        if size < 1:
            raise InputError(f"{name} must be >= 1, got {size}")


def _check_padding(mask: torch.Tensor | None, batch: int, length: int) -> None:
    if mask is not None and (mask.dtype != torch.bool or tuple(mask.shape) != (batch, length)):
        raise InputError(
            f"key_padding_mask must be bool of shape (B, Lk)=({batch}, {length}), "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )


def check_query_keys_values(
    query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, *, dim: int, key_dim: int
) -> None:
    """One line for a query (B, Lq, dim) or (B, dim), keys (B, Lk, key_dim) or values (B, Lk, Dv)
    of the wrong shape or dtype (additive and Luong attention take the same inputs)."""
    if query.dim() not in (2, 3) or query.shape[-1] != dim or not query.is_floating_point():
        raise InputError(
            f"query must be floating (B, Lq, {dim}) or (B, {dim}), got {query.dtype} {tuple(query.shape)}"
        )
    B = query.shape[0]
    if keys.dim() != 3 or keys.shape[0] != B or keys.shape[-1] != key_dim or keys.dtype != query.dtype:
        raise InputError(
            f"keys must be {query.dtype} (B={B}, Lk, {key_dim}), got {keys.dtype} {tuple(keys.shape)}"
        )
    if values.dim() != 3 or values.shape[:2] != keys.shape[:2] or values.dtype != query.dtype:
        raise InputError(
            f"values must be {query.dtype} (B, Lk, Dv) with (B, Lk)={tuple(keys.shape[:2])}, "
            f"got {values.dtype} {tuple(values.shape)}"
        )


class AdditiveAttention(RecordsAttention):
    """Bahdanau attention of queries (B, Lq, dim) or (B, dim) over keys (B, Lk, key_dim).

    Returns the context ``sum_j a_ij values_j``: (B, Lq, Dv), or (B, Dv) for a (B, dim)
    query. ``values`` default to the keys (the annotations h_j of the paper).
    ``key_padding_mask`` (B, Lk) is True at padding keys, which get weight exactly 0;
    a query whose keys are all padding gets zero weights and a zero context.

    Records the weights ``a`` as (B, Lq, Lk); a single (B, dim) query records
    (B, 1, Lk), so a decoder that calls the layer once per step leaves one record per
    step with the same layout.

    ``attn_dim`` is the MLP's hidden width (default ``dim``). ``qkv_bias`` adds the
    bias b inside the tanh; it sits on the key projection only, since a second bias on
    the query projection would be the same parameter twice.
    """

    def __init__(
        self,
        dim: int,
        *,
        key_dim: int | None = None,
        attn_dim: int | None = None,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.key_dim = dim if key_dim is None else key_dim
        self.attn_dim = dim if attn_dim is None else attn_dim
        _check_sizes(dim=dim, key_dim=self.key_dim, attn_dim=self.attn_dim)
        if not 0.0 <= attn_drop < 1.0:
            raise InputError(f"attn_drop must be in [0, 1), got {attn_drop}")
        self.q_proj = nn.Linear(dim, self.attn_dim, bias=False)
        self.k_proj = nn.Linear(self.key_dim, self.attn_dim, bias=qkv_bias)
        self.score = nn.Linear(self.attn_dim, 1, bias=False)
        self.attn_drop = nn.Dropout(attn_drop)

    def _check(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> None:
        check_query_keys_values(query, keys, values, dim=self.dim, key_dim=self.key_dim)

    def logits(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Alignment scores e_ij: (B, Lq, dim) x (B, Lk, key_dim) -> (B, Lq, Lk)."""
        q = self.q_proj(query)[:, :, None, :]  # (B, Lq, 1, A)
        k = self.k_proj(keys)[:, None, :, :]  # (B, 1, Lk, A)
        scores: torch.Tensor = self.score(torch.tanh(q + k))  # (B, Lq, Lk, 1)
        return scores.squeeze(-1)  # (B, Lq, Lk)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor | None = None,
        *,
        key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        values = keys if values is None else values
        self._check(query, keys, values)
        _check_padding(key_padding_mask, keys.shape[0], keys.shape[1])
        single = query.dim() == 2
        q = query[:, None, :] if single else query  # (B, Lq, dim)
        padding = None if key_padding_mask is None else key_padding_mask[:, None, :]  # (B, 1, Lk)
        weights = masked_softmax(self.logits(q, keys), padding)  # (B, Lq, Lk)
        self._record(weights)
        context: torch.Tensor = self.attn_drop(weights) @ values  # (B, Lq, Dv)
        return context[:, 0] if single else context


class SpatialSoftAttention(RecordsAttention):
    """Soft attention over a feature map (B, C, H, W) given a hidden state (B, hidden_dim).

    ``alpha = softmax_i(v^T tanh(W_a a_i + W_h h))`` over the H*W locations a_i;
    returns the context ``z = beta * sum_i alpha_i a_i`` (B, C), where
    ``beta = sigmoid(f_beta(h))`` (B, 1) if ``gate`` else 1. Records alpha as (B, H, W);
    call the layer once per decoder step and ``torch.stack(rec.calls(name), 1)`` is the
    (B, T, H, W) input of :func:`doubly_stochastic_penalty` (capture with
    ``differentiable=True`` to train through it).
    """

    def __init__(
        self,
        channels: int,
        hidden_dim: int,
        *,
        attn_dim: int | None = None,
        qkv_bias: bool = True,
        gate: bool = True,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.hidden_dim = hidden_dim
        self.attn_dim = channels if attn_dim is None else attn_dim
        _check_sizes(channels=channels, hidden_dim=hidden_dim, attn_dim=self.attn_dim)
        self.feat_proj = nn.Linear(channels, self.attn_dim, bias=qkv_bias)
        self.hidden_proj = nn.Linear(hidden_dim, self.attn_dim, bias=False)
        self.score = nn.Linear(self.attn_dim, 1, bias=False)
        self.gate = nn.Linear(hidden_dim, 1) if gate else None

    def _check(self, features: torch.Tensor, hidden: torch.Tensor) -> None:
        if features.dim() != 4 or features.shape[1] != self.channels or not features.is_floating_point():
            raise InputError(
                f"features must be floating (B, {self.channels}, H, W), "
                f"got {features.dtype} {tuple(features.shape)}"
            )
        if (
            hidden.dim() != 2
            or hidden.shape != (features.shape[0], self.hidden_dim)
            or hidden.dtype != features.dtype
        ):
            raise InputError(
                f"hidden must be {features.dtype} (B={features.shape[0]}, {self.hidden_dim}), "
                f"got {hidden.dtype} {tuple(hidden.shape)}"
            )

    def forward(self, features: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        self._check(features, hidden)
        B, _, H, W = features.shape
        a = features.flatten(2).transpose(1, 2)  # (B, L=H*W, C)
        e = self.score(torch.tanh(self.feat_proj(a) + self.hidden_proj(hidden)[:, None, :]))  # (B, L, 1)
        alpha = e.squeeze(-1).softmax(dim=-1)  # (B, L)
        self._record(alpha.view(B, H, W))  # (B, H, W)
        context: torch.Tensor = (alpha[:, None, :] @ a).squeeze(1)  # (B, C)
        if self.gate is not None:
            context = torch.sigmoid(self.gate(hidden)) * context  # beta (B, 1) scales the whole context
        return context


def doubly_stochastic_penalty(
    alphas: torch.Tensor, *, padding_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Eq. (14) of Show, Attend and Tell without lambda: mean over b of sum_i (1 - sum_t alpha_bti)^2.

    ``alphas`` (B, T, H, W) are the attention maps of T decoder steps. It pushes every
    location to receive, over the whole caption, a total attention of about 1.
    ``padding_mask`` (B, T) is True at padded steps, which do not count.
    """
    if alphas.dim() != 4 or not alphas.is_floating_point():
        raise InputError(f"alphas must be floating (B, T, H, W), got {alphas.dtype} {tuple(alphas.shape)}")
    if padding_mask is not None:
        if padding_mask.dtype != torch.bool or padding_mask.shape != alphas.shape[:2]:
            raise InputError(
                f"padding_mask must be bool (B, T)={tuple(alphas.shape[:2])}, "
                f"got {padding_mask.dtype} {tuple(padding_mask.shape)}"
            )
        alphas = alphas.masked_fill(padding_mask[:, :, None, None], 0.0)  # (B, T, H, W)
    total = alphas.sum(dim=1)  # (B, H, W)
    return (total - 1.0).square().sum(dim=(1, 2)).mean()
