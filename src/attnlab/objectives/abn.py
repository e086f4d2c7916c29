"""Attention Branch Network losses (Fukui et al., CVPR 2019, arXiv:1812.10025).

ABN trains both branches with cross-entropy on the same labels, summed with equal
weight (Eq. 1): ``L = L_att + L_per``, as the reference implementation does.
Mitsuhara et al. (arXiv:1905.04929) fine-tune with human-edited maps M' by adding
``L_map = gamma * ||M - M'||_2``; here the L2 norm is taken per image over its map
and averaged over the batch, so the term does not grow with the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from attnlab.errors import InputError
from attnlab.objectives.terms import Terms, weighted_sum


@dataclass(frozen=True)
class ABNLoss:
    """Unweighted terms and the weight that ``terms()`` applies."""

    attention_branch: torch.Tensor  # () L_att, cross-entropy of the attention-branch logits
    perception_branch: torch.Tensor  # () L_per, cross-entropy of the perception-branch logits
    map: torch.Tensor | None  # () mean over images of ||M - M'||_2, None without target maps
    map_weight: float

    def terms(self) -> Terms:
        """Named, weighted: att + per (+ map_weight * map)."""
        terms = {"att": self.attention_branch, "per": self.perception_branch}
        return terms if self.map is None else {**terms, "map": self.map_weight * self.map}

    def total(self) -> torch.Tensor:
        return weighted_sum(self.terms())


def attention_map_distance(attention: torch.Tensor, target_attention: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the per-image L2 distance ||M - M'||_2; both (B, 1, h, w)."""
    if attention.shape != target_attention.shape or attention.dim() != 4 or attention.shape[1] != 1:
        raise InputError(
            f"attention and target_attention must both be (B, 1, h, w), "
            f"got {tuple(attention.shape)} and {tuple(target_attention.shape)}"
        )
    diff = (attention - target_attention.to(attention)).flatten(1)  # (B, h * w)
    return torch.linalg.vector_norm(diff, dim=1).mean()


def abn_loss(
    att_logits: torch.Tensor,
    per_logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    attention: torch.Tensor | None = None,
    target_attention: torch.Tensor | None = None,
    map_weight: float = 0.0,
) -> ABNLoss:
    """ABN objective from the two branches' logits (B, K) and class targets (B,) int64.

    Give ``attention`` (the branch's M) and ``target_attention`` (M') together to add
    ``map_weight * ||M - M'||_2`` (Mitsuhara et al.'s human-knowledge term).
    """
    if att_logits.dim() != 2 or att_logits.shape != per_logits.shape:
        raise InputError(
            f"att_logits and per_logits must both be (B, K), "
            f"got {tuple(att_logits.shape)} and {tuple(per_logits.shape)}"
        )
    if targets.shape != att_logits.shape[:1] or targets.dtype != torch.long:
        raise InputError(
            f"targets must be int64 ({att_logits.shape[0]},), got {targets.dtype} {tuple(targets.shape)}"
        )
    if (attention is None) != (target_attention is None):
        raise InputError("give attention and target_attention together (or neither)")
    if map_weight < 0:
        raise InputError(f"map_weight must be >= 0, got {map_weight}")
    l_map = None
    if attention is not None and target_attention is not None:
        l_map = attention_map_distance(attention, target_attention)
    return ABNLoss(
        attention_branch=F.cross_entropy(att_logits, targets),
        perception_branch=F.cross_entropy(per_logits, targets),
        map=l_map,
        map_weight=map_weight,
    )
