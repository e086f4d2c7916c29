"""DQN's temporal-difference loss with a target network (Mnih et al., Nature 2015).

``y = r + gamma * (1 - terminated) * max_a' Q_target(s', a')`` and the loss is the mean of
``huber(Q(s, a) - y)`` (the paper's error clipping) or of its square (CleanRL's
``dqn.py``). A truncated episode (time limit) still bootstraps: only ``terminated`` cuts
the return. With ``online_next_q_values`` (Double DQN, van Hasselt et al. 2016,
arXiv:1509.06461) the online network picks ``a'`` and the target network values it.

n-step returns (Sutton 1988; Rainbow's multi-step targets): ``r`` is then the discounted sum of
``horizons`` rewards and ``s'`` the state that many steps later, so the bootstrap is discounted
by ``gamma ** horizons``. Prioritised replay (Schaul et al. 2016) weights each transition's loss
by its importance-sampling ``weights`` and takes ``errors`` (|y - Q(s, a)|) as new priorities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from attnlab.errors import InputError


@dataclass(frozen=True)
class TDLoss:
    total: torch.Tensor  # () mean (weighted) TD loss, what the optimiser minimises
    q_taken: torch.Tensor  # (B,) Q(s, a) of the actions taken
    target: torch.Tensor  # (B,) the TD target y, no gradient
    errors: torch.Tensor  # (B,) |y - Q(s, a)|, no gradient: prioritised replay's new priorities


def td_target(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    next_q_values: torch.Tensor,
    *,
    gamma: float,
    online_next_q_values: torch.Tensor | None = None,
    horizons: torch.Tensor | None = None,
) -> torch.Tensor:
    """``r + gamma ** n * (1 - terminated) * Q_target(s', a')`` (B,), with ``a'`` the target's argmax,
    or the online network's with ``online_next_q_values`` (Double DQN); ``n`` is ``horizons`` (B,)
    int64, the rewards summed into ``r`` (1 without)."""
    if online_next_q_values is None:
        next_value = next_q_values.max(dim=1).values  # (B,)
    else:
        best = online_next_q_values.argmax(dim=1, keepdim=True)  # (B, 1)
        next_value = next_q_values.gather(1, best).squeeze(1)  # (B,)
    return (rewards + bootstrap_discount(terminated, gamma, horizons, rewards.dtype) * next_value).detach()


def bootstrap_discount(
    terminated: torch.Tensor, gamma: float, horizons: torch.Tensor | None, dtype: torch.dtype
) -> torch.Tensor:
    """(B,) ``gamma ** n`` where the episode goes on after ``s'``, 0 where it ended there."""
    alive = 1.0 - terminated.to(dtype)
    return gamma * alive if horizons is None else torch.pow(gamma, horizons.to(dtype)) * alive


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
    horizons: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> TDLoss:
    """TD loss of the online ``q_values`` (B, A) at ``actions`` (B,) int64 against targets from the
    target network's ``next_q_values`` (B, A); ``rewards`` (B,), ``terminated`` (B,) bool;
    ``horizons`` (B,) the n of n-step transitions, ``weights`` (B,) importance-sampling weights."""
    _check(q_values, actions, rewards, terminated, next_q_values, gamma)
    q_taken = q_values.gather(1, actions.unsqueeze(1)).squeeze(1)  # (B,)
    target = td_target(
        rewards,
        terminated,
        next_q_values,
        gamma=gamma,
        online_next_q_values=online_next_q_values,
        horizons=horizons,
    )
    if weights is None:
        total = F.smooth_l1_loss(q_taken, target) if kind == "huber" else F.mse_loss(q_taken, target)
    else:
        each = (
            F.smooth_l1_loss(q_taken, target, reduction="none")
            if kind == "huber"
            else (q_taken - target) ** 2
        )
        total = (weights * each).mean()
    return TDLoss(total=total, q_taken=q_taken, target=target, errors=(target - q_taken).abs().detach())


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
