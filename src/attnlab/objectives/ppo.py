"""PPO's losses and advantages, and RND's predictor loss, as pure functions.

Schulman et al., "Proximal Policy Optimization Algorithms", arXiv:1707.06347 (clipped surrogate);
"High-Dimensional Continuous Control Using Generalized Advantage Estimation", arXiv:1506.02438
(GAE). Value clipping and the loss weights follow CleanRL's ``ppo_atari.py``; the two value
streams and the predictor's sample fraction follow RND's official release
(https://github.com/openai/random-network-distillation, ``ppo_agent.py``).

Indexing: ``dones[t]`` is True when the transition taken at step t ended its episode, so
``values[t + 1]`` (or ``next_value`` after the last step) belongs to a new episode and is not
bootstrapped from. A non-episodic stream (RND's intrinsic rewards) ignores ``dones``.
"""

from __future__ import annotations

import torch

from attnlab.errors import InputError
from attnlab.objectives.terms import Terms


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    next_value: torch.Tensor,
    *,
    gamma: float,
    lam: float,
    episodic: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns (T, N) from ``rewards``, ``values`` (T, N), ``dones`` (T, N) bool and
    the value of the state after the last step ``next_value`` (N,)."""
    if rewards.dim() != 2 or values.shape != rewards.shape or dones.shape != rewards.shape:
        raise InputError(
            f"rewards, values and dones must all be (T, N), got {tuple(rewards.shape)}, "
            f"{tuple(values.shape)} and {tuple(dones.shape)}"
        )
    if next_value.shape != rewards.shape[1:]:
        raise InputError(
            f"next_value must be (N,) = {tuple(rewards.shape[1:])}, got {tuple(next_value.shape)}"
        )
    steps = rewards.shape[0]
    advantages = torch.zeros_like(values)
    carry = torch.zeros_like(next_value)
    for t in reversed(range(steps)):
        following = next_value if t == steps - 1 else values[t + 1]  # (N,)
        keep = torch.ones_like(following) if not episodic else 1.0 - dones[t].to(values.dtype)
        delta = rewards[t] + gamma * following * keep - values[t]
        carry = delta + gamma * lam * keep * carry
        advantages[t] = carry
    return advantages, advantages + values


def policy_loss(
    new_log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, *, clip: float
) -> torch.Tensor:
    """The clipped surrogate, negated for minimisation: ``mean(max(-A r, -A clip(r, 1-e, 1+e)))``."""
    ratio = (new_log_prob - old_log_prob).exp()  # (B,)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip, 1.0 + clip)
    return torch.maximum(unclipped, clipped).mean()


def value_loss(
    new_value: torch.Tensor, old_value: torch.Tensor, returns: torch.Tensor, *, clip: float | None
) -> torch.Tensor:
    """``0.5 * mean((V - R)^2)``; with ``clip`` the pessimistic max with the value moved at most
    ``clip`` from the rollout's (CleanRL's ``clip_vloss``)."""
    unclipped = (new_value - returns).square()
    if clip is None:
        return 0.5 * unclipped.mean()
    moved = old_value + (new_value - old_value).clamp(-clip, clip)
    return 0.5 * torch.maximum(unclipped, (moved - returns).square()).mean()


def rnd_predictor_loss(predicted: torch.Tensor, target: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean squared feature error over the samples ``keep`` (B,) bool selects (the official release
    trains the predictor on a random fraction of each minibatch); 0 when none is kept."""
    per_sample = (predicted - target.detach()).square().mean(dim=1)  # (B,)
    weights = keep.to(per_sample.dtype)
    return (per_sample * weights).sum() / weights.sum().clamp_min(1.0)


def intrinsic_reward(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The novelty of each input (B,): the mean over features of ``(f_pred - f_target)^2``
    (the official ``reduce_mean``; the thesis' squared norm differs by the constant feature count,
    which the return normalisation divides out)."""
    return (predicted - target).square().mean(dim=1)


def ppo_terms(
    *,
    policy: torch.Tensor,
    entropy: torch.Tensor,
    value_ext: torch.Tensor,
    value_int: torch.Tensor | None,
    rnd: torch.Tensor | None,
    ent_coef: float,
    vf_coef: float,
) -> Terms:
    """The named, weighted terms whose sum PPO minimises."""
    terms: Terms = {"policy": policy, "entropy": -ent_coef * entropy, "value_ext": vf_coef * value_ext}
    if value_int is not None:
        terms["value_int"] = vf_coef * value_int
    if rnd is not None:
        terms["rnd"] = rnd
    return terms
