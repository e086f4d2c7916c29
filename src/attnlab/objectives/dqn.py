"""DQN's temporal-difference loss with a target network (Mnih et al., Nature 2015).

``y = r + gamma * (1 - terminated) * max_a' Q_target(s', a')`` and the loss is the mean of
``huber(Q(s, a) - y)`` (the paper's error clipping) or of its square (CleanRL's
``dqn.py``). A truncated episode (time limit) still bootstraps: only ``terminated`` cuts
the return. With ``online_next_q_values`` (Double DQN, van Hasselt et al. 2016,
arXiv:1509.06461) the online network picks ``a'`` and the target network values it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from attnlab.errors import InputError


@dataclass(frozen=True)
class TDLoss:
    total: torch.Tensor  # () mean TD loss, what the optimiser minimises
    q_taken: torch.Tensor  # (B,) Q(s, a) of the actions taken
    target: torch.Tensor  # (B,) the TD target y, no gradient


def td_target(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    next_q_values: torch.Tensor,
    *,
    gamma: float,
    online_next_q_values: torch.Tensor | None = None,
) -> torch.Tensor:
    """``r + gamma * (1 - terminated) * Q_target(s', a')`` (B,), with ``a'`` the target's argmax, or
    the online network's with ``online_next_q_values`` (Double DQN)."""
    if online_next_q_values is None:
        next_value = next_q_values.max(dim=1).values  # (B,)
    else:
        best = online_next_q_values.argmax(dim=1, keepdim=True)  # (B, 1)
        next_value = next_q_values.gather(1, best).squeeze(1)  # (B,)
    return (rewards + gamma * (1.0 - terminated.float()) * next_value).detach()


def td_loss(
    q_values: torch.Tensor,
    actions: torch.Tensor,
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    next_q_values: torch.Tensor,
    *,
    gamma: float,
    online_next_q_values: torch.Tensor | None = None,
    kind: Literal["huber", "mse"] = "huber",
) -> TDLoss:
    """TD loss of the online ``q_values`` (B, A) at ``actions`` (B,) int64 against targets from the
    target network's ``next_q_values`` (B, A); ``rewards`` (B,), ``terminated`` (B,) bool."""
    _check(q_values, actions, rewards, terminated, next_q_values, gamma)
    q_taken = q_values.gather(1, actions.unsqueeze(1)).squeeze(1)  # (B,)
    target = td_target(
        rewards, terminated, next_q_values, gamma=gamma, online_next_q_values=online_next_q_values
    )
    total = F.smooth_l1_loss(q_taken, target) if kind == "huber" else F.mse_loss(q_taken, target)
    return TDLoss(total=total, q_taken=q_taken, target=target)


def _check(
    q_values: torch.Tensor,
    actions: torch.Tensor,
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    next_q_values: torch.Tensor,
    gamma: float,
) -> None:
    if q_values.dim() != 2 or next_q_values.shape != q_values.shape:
        raise InputError(
            f"q_values and next_q_values must both be (B, A), "
            f"got {tuple(q_values.shape)} and {tuple(next_q_values.shape)}"
        )
    batch = (q_values.shape[0],)
    for name, t in (("actions", actions), ("rewards", rewards), ("terminated", terminated)):
        if t.shape != batch:
            raise InputError(f"{name} must be (B,) = {batch}, got {tuple(t.shape)}")
    if actions.dtype != torch.long:
        raise InputError(f"actions must be int64, got {actions.dtype}")
    if not 0.0 <= gamma <= 1.0:
        raise InputError(f"gamma must lie in [0, 1], got {gamma}")
