"""Effective rank of a set of features: how many directions they use, without labels.

Roy and Vetterli 2007 ("The effective rank: a measure of effective dimensionality"); RankMe
(Garrido et al. 2023, arXiv:2210.02885) uses it to spot the dimensional collapse of joint-embedding
self-supervised models without labels. With σ the singular values of the centred feature matrix
and p = σ / Σσ, the effective rank is exp(-Σ p log p): k for features spread evenly over k
orthogonal directions, 1 for features on one line. Deviation from RankMe: the features are centred
first (RankMe is not), so a shared offset does not count as a direction.
"""

from __future__ import annotations

import torch

from attnlab.errors import InputError


def effective_rank(features: torch.Tensor) -> float:
    """(M, D) features -> their effective rank in [1, max(1, min(M - 1, D))]; 1 when they do not vary
    (constant rows, a single row)."""
    if features.dim() != 2 or features.shape[0] < 1 or not features.is_floating_point():
        raise InputError(f"effective_rank needs float (M >= 1, D) features, got {tuple(features.shape)}")
    x = features.detach().double()
    s = torch.linalg.svdvals(x - x.mean(0))
    if s.sum() == 0:
        return 1.0
    p = s / s.sum()
    return float(torch.exp(-(p * torch.log(p.clamp_min(1e-300))).sum()))
