"""The distributional (categorical, C51) TD loss of Rainbow (Bellemare, Dabney, Munos 2017,
arXiv:1707.06887, Algorithm 1; Hessel et al. 2018, arXiv:1710.02298; reference: Kaixhin/Rainbow
``agent.learn``).

The return distribution of each action lives on ``Z`` fixed atoms ``z_j`` (``support``). The
target distribution of a transition is the next state's distribution for ``a*`` (the target
network's greedy action, or the online network's under Double DQN, as Rainbow does), shifted and
shrunk by the Bellman operator, ``r + gamma ** n (1 - terminated) z_j``, clipped to the support
and projected back onto the atoms: each shifted atom's probability is split between its two
neighbours in proportion to its distance from them. The loss is the cross-entropy
``-sum_j m_j log p_j(s, a)`` per transition (what Rainbow also takes as the new priority), meaned
with the importance-sampling weights of prioritised replay.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from attnlab.errors import InputError
from attnlab.objectives.dqn import bootstrap_discount


@dataclass(frozen=True)
class CategoricalLoss:
    total: torch.Tensor  # () mean (weighted) cross-entropy, what the optimiser minimises
    each: torch.Tensor  # (B,) cross-entropy per transition, no gradient: the new priorities
    q_taken: torch.Tensor  # (B,) expected return of the action taken, no gradient
    target: torch.Tensor  # (B, Z) the projected target distribution, no gradient


def project_distribution(
    next_probs: torch.Tensor, rewards: torch.Tensor, discounts: torch.Tensor, support: torch.Tensor
) -> torch.Tensor:
    """``next_probs`` (B, Z) moved to ``rewards + discounts * support`` (B,), (B,), (Z,) and
    projected onto ``support`` (evenly spaced): (B, Z), each row summing to its input's sum."""
    atoms = support.shape[0]
    v_min, v_max = float(support[0]), float(support[-1])
    delta = (v_max - v_min) / (atoms - 1)
    shifted = (rewards.unsqueeze(1) + discounts.unsqueeze(1) * support).clamp(v_min, v_max)  # (B, Z)
    position = (shifted - v_min) / delta  # (B, Z) fractional atom index
    lower, upper = position.floor().long(), position.ceil().long()
    # A shifted atom that lands exactly on an atom would give both neighbours weight 0: move one
    # neighbour out so that the whole mass goes to the atom it landed on.
    lower[(upper > 0) & (lower == upper)] -= 1
    upper[(lower < atoms - 1) & (lower == upper)] += 1
    offset = (torch.arange(next_probs.shape[0], device=next_probs.device) * atoms).unsqueeze(1)  # (B, 1)
    out = torch.zeros_like(next_probs).flatten()  # (B * Z,)
    out.index_add_(0, (lower + offset).flatten(), (next_probs * (upper - position)).flatten())
    out.index_add_(0, (upper + offset).flatten(), (next_probs * (position - lower)).flatten())
    return out.view_as(next_probs)


def categorical_loss(
    log_probs: torch.Tensor,
    actions: torch.Tensor,
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    next_probs: torch.Tensor,
    support: torch.Tensor,
    *,
    gamma: float,
    online_next_q_values: torch.Tensor | None = None,
    horizons: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> CategoricalLoss:
    """The online network's ``log_probs`` (B, A, Z) at ``actions`` (B,) against the projected target
    network's ``next_probs`` (B, A, Z); ``online_next_q_values`` (B, A) picks ``a*`` (Double DQN)."""
    batch, _, atoms = log_probs.shape
    if next_probs.shape != log_probs.shape or support.shape != (atoms,):
        raise InputError(
            f"log_probs and next_probs must both be (B, A, Z) with support (Z,), got "
            f"{tuple(log_probs.shape)}, {tuple(next_probs.shape)} and {tuple(support.shape)}"
        )
    if actions.shape != (batch,) or actions.dtype != torch.long:
        raise InputError(
            f"actions must be int64 (B,) = ({batch},), got {actions.dtype} {tuple(actions.shape)}"
        )
    rows = torch.arange(batch, device=log_probs.device)
    with torch.no_grad():
        chooser = online_next_q_values if online_next_q_values is not None else (next_probs * support).sum(-1)
        best = chooser.argmax(dim=1)  # (B,)
        discounts = bootstrap_discount(terminated, gamma, horizons, rewards.dtype)
        target = project_distribution(next_probs[rows, best], rewards, discounts, support)  # (B, Z)
    taken = log_probs[rows, actions]  # (B, Z)
    each = -(target * taken).sum(dim=1)  # (B,)
    total = each.mean() if weights is None else (weights * each).mean()
    q_taken = (taken.detach().exp() * support).sum(dim=1)
    return CategoricalLoss(total=total, each=each.detach(), q_taken=q_taken, target=target)
