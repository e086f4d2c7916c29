"""Multi-hop key-value memory read.

End-to-End Memory Networks (Sukhbaatar et al., NeurIPS 2015, arXiv:1503.08895) and
Key-Value Memory Networks (Miller et al., EMNLP 2016, arXiv:1606.03126). Per hop j:

    p_i = softmax_i(u_j . k_i)      (addressing, over memory slots)
    o   = sum_i p_i v_i             (reading)
    u_{j+1} = R_j(u_j + o)          (KV-MemNN, a learned D x D matrix per hop), or
    u_{j+1} = u_j + o               (MemN2N with adjacent/layer-wise tying and H = I)

The memories arrive already embedded (A Phi_K(k), A Phi_V(v) in KV-MemNN), so the
same keys and values serve every hop, as in KV-MemNN; embedding and the answer
layer belong to the model.
"""

from __future__ import annotations

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.layers._recording import RecordsAttention
from attnlab.layers.masks import masked_softmax


class KeyValueMemory(RecordsAttention):
    """``num_hops`` reads of a memory of M (key, value) slots by a query u (B, dim); returns u (B, dim).

    ``hop_linear``: u <- R_j(u + o) with a bias-free ``nn.Linear(dim, dim)`` per hop
    (KV-MemNN); otherwise u <- u + o (MemN2N). ``key_padding_mask`` (B, M) is True at
    empty slots, which get weight exactly 0 (a fully empty memory reads o = 0).

    Records the addressing weights p of every hop, one (B, M) record per hop in hop
    order, so ``rec.calls(name)`` has ``num_hops`` entries per forward.
    """

    def __init__(self, dim: int, *, num_hops: int = 2, hop_linear: bool = True) -> None:
        super().__init__()
        if dim < 1 or num_hops < 1:
            raise InputError(f"dim and num_hops must be >= 1, got dim={dim}, num_hops={num_hops}")
        self.dim = dim
        self.num_hops = num_hops
        self.hop_proj = (
            nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range(num_hops)) if hop_linear else None
        )

    def _check(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> None:
        if query.dim() != 2 or query.shape[1] != self.dim or not query.is_floating_point():
            raise InputError(
                f"query must be floating (B, {self.dim}), got {query.dtype} {tuple(query.shape)}"
            )
        B = query.shape[0]
        for name, memory in (("keys", keys), ("values", values)):
            if (
                memory.dim() != 3
                or memory.shape[0] != B
                or memory.shape[2] != self.dim
                or memory.dtype != query.dtype
            ):
                raise InputError(
                    f"{name} must be {query.dtype} (B={B}, M, {self.dim}), "
                    f"got {memory.dtype} {tuple(memory.shape)}"
                )
        if keys.shape[1] != values.shape[1]:
            raise InputError(
                f"keys and values must have the same M, got {keys.shape[1]} and {values.shape[1]}"
            )

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        *,
        key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        self._check(query, keys, values)
        B, M = keys.shape[:2]
        if key_padding_mask is not None and (
            key_padding_mask.dtype != torch.bool or tuple(key_padding_mask.shape) != (B, M)
        ):
            raise InputError(
                f"key_padding_mask must be bool of shape (B, M)=({B}, {M}), "
                f"got {key_padding_mask.dtype} {tuple(key_padding_mask.shape)}"
            )
        u = query  # (B, D)
        for hop in range(self.num_hops):
            u = self._hop(hop, u, keys, values, key_padding_mask)
        return u

    def _hop(
        self,
        hop: int,
        u: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        padding: torch.Tensor | None,
    ) -> torch.Tensor:
        p = masked_softmax((keys @ u[:, :, None]).squeeze(-1), padding)  # (B, M)
        self._record(p)
        o = (p[:, None, :] @ values).squeeze(1)  # (B, D)
        u = u + o
        return u if self.hop_proj is None else self.hop_proj[hop](u)
