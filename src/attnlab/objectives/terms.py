"""Losses are named, already weighted terms: the task logs each and trains on their sum."""

from __future__ import annotations

import torch

Terms = dict[str, torch.Tensor]


def weighted_sum(terms: Terms) -> torch.Tensor:
    """The training loss: the sum of named, already weighted terms (as the task sums them)."""
    return torch.stack(list(terms.values())).sum()
