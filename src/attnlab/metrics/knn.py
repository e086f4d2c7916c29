"""Weighted k-nearest-neighbour classification of frozen features: DINO's k-NN evaluation.

Reference: facebookresearch/dino ``eval_knn.py`` (``knn_classifier``), after Wu et al. 2018
(arXiv:1805.01978). Features are L2-normalised; a test sample's similarity to every bank sample is
the cosine; its ``k`` most similar bank samples (default 20) vote for their labels with weight
``exp(sim / T)`` (T = 0.07); the prediction is the class with the largest summed vote.

Deviations: ties between classes go to the lowest class index (``argmax``); the official sorts the
votes, which breaks ties in an unspecified order. The bank is searched in one matrix product per
call, the official in chunks of 100 test samples (the same numbers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attnlab.errors import InputError


def knn_votes(
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    queries: torch.Tensor,
    num_classes: int,
    *,
    k: int = 20,
    temperature: float = 0.07,
) -> torch.Tensor:
    """Summed votes (Q, num_classes) of each query's ``k`` nearest bank features (cosine similarity)."""
    if bank.dim() != 2 or queries.dim() != 2 or bank.shape[1] != queries.shape[1]:
        raise InputError(
            "k-NN needs bank (N, D) and queries (Q, D) features, "
            f"got {tuple(bank.shape)}, {tuple(queries.shape)}"
        )
    if bank_labels.shape != (len(bank),):
        raise InputError(f"bank labels must be ({len(bank)},), got {tuple(bank_labels.shape)}")
    if k < 1 or temperature <= 0:
        raise InputError(f"k-NN needs k >= 1 and temperature > 0, got k={k}, temperature={temperature}")
    similarity = F.normalize(queries, dim=1) @ F.normalize(bank, dim=1).T  # (Q, N) cosines
    top, index = similarity.topk(min(k, len(bank)), dim=1)  # (Q, k)
    weights = (top / temperature).exp()  # (Q, k)
    onehot = F.one_hot(bank_labels[index], num_classes).to(weights.dtype)  # (Q, k, classes)
    return (onehot * weights[..., None]).sum(dim=1)  # (Q, classes)


def knn_predict(
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    queries: torch.Tensor,
    num_classes: int,
    *,
    k: int = 20,
    temperature: float = 0.07,
) -> torch.Tensor:
    """The predicted class (Q,) of every query: the largest weighted vote."""
    votes = knn_votes(bank, bank_labels, queries, num_classes, k=k, temperature=temperature)
    return votes.argmax(dim=1)
