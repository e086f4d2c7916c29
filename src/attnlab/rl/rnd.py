"""Random Network Distillation's statistics and transition-RND's queue of observations.

Burda et al., "Exploration by Random Network Distillation", arXiv:1810.12894; the details
follow the official release (https://github.com/openai/random-network-distillation):

- :class:`RunningMeanStd`: mean and variance merged from batch moments (Chan et al.'s
  parallel formula, as in ``baselines``' ``RunningMeanStd``), count starting at 1e-4. Used for
  the observation normalisation (per element of one frame) and for the std of the
  intrinsic returns.
- :class:`RewardForwardFilter`: the discounted sum of intrinsic rewards ``R <- gamma_int R + r``,
  one per environment, advanced **one time step at a time** and never reset (the intrinsic
  stream is non-episodic).
- :func:`normalise_intrinsic`: feed a rollout's rewards (T, N) through the filter row by row
  (time), merge the T*N filtered values' moments into the running std, divide the rewards by
  it. CleanRL's ``ppo_rnd_envpool.py`` iterates over the transpose (N, T), so its filter runs
  over environments instead of time (CleanRL issue 360); the test checks our order by hand.
- :class:`TransitionQueue`: transition-RND (the seed thesis, section 3.2): the last ``n + 1``
  observations of each environment, oldest first; each new observation drops the oldest and is
  pushed as the newest; at an episode's end the queue is reset to zeros. ``n = 0`` is RND.
"""

from __future__ import annotations

from typing import Any

import torch

from attnlab.errors import ConfigError


class RunningMeanStd:
    """Running mean and (population) variance of tensors of ``shape``, float64."""

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.mean = torch.zeros(shape, dtype=torch.float64)
        self.var = torch.ones(shape, dtype=torch.float64)
        self.count = 1e-4  # as baselines: the first batch all but replaces the prior

    def update(self, batch: torch.Tensor) -> None:
        """Merge a batch (B, *shape) into the statistics."""
        x = batch.to(torch.float64)
        self.update_from_moments(x.mean(0), x.var(0, unbiased=False), x.shape[0])

    def update_from_moments(self, mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
        delta = mean - self.mean
        total = self.count + count
        m2 = self.var * self.count + var * count + delta.square() * self.count * count / total
        self.mean = self.mean + delta * count / total
        self.var = m2 / total
        self.count = total

    def normalise(self, x: torch.Tensor, clip: float) -> torch.Tensor:
        """``clip((x - mean) / std, -clip, clip)`` in float32."""
        z = (x.to(torch.float64) - self.mean) / self.var.sqrt().clamp_min(1e-8)
        return z.clamp(-clip, clip).to(torch.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean, self.var, self.count = state["mean"], state["var"], float(state["count"])


class RewardForwardFilter:
    """``R_t = gamma * R_{t-1} + r_t`` per environment, starting from the first reward."""

    def __init__(self, gamma: float) -> None:
        self.gamma = gamma
        self.returns: torch.Tensor | None = None  # (N,) float64

    def update(self, rewards: torch.Tensor) -> torch.Tensor:
        """One time step's rewards (N,) -> the filtered returns (N,)."""
        r = rewards.to(torch.float64)
        self.returns = r.clone() if self.returns is None else self.returns * self.gamma + r
        return self.returns

    def state_dict(self) -> dict[str, Any]:
        return {"gamma": self.gamma, "returns": self.returns}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gamma, self.returns = float(state["gamma"]), state["returns"]


def normalise_intrinsic(
    rewards: torch.Tensor, forward_filter: RewardForwardFilter, return_stats: RunningMeanStd
) -> torch.Tensor:
    """Rollout intrinsic rewards (T, N) divided by the running std of their discounted returns.

    The filter advances along time (rows); the statistics take all T*N filtered values at once,
    as the official ``update_from_moments(mean, var, count)`` does."""
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be (T, N), got {tuple(rewards.shape)}")
    filtered = torch.stack([forward_filter.update(row) for row in rewards])  # (T, N)
    flat = filtered.reshape(-1)
    return_stats.update_from_moments(flat.mean(), flat.var(unbiased=False), flat.numel())
    return (rewards.to(torch.float64) / return_stats.var.sqrt()).to(rewards.dtype)


class TransitionQueue:
    """The last ``n + 1`` raw observations of each of ``num_envs`` environments, oldest first.

    ``frames`` (N, n + 1, *frame) holds raw observations and ``valid`` (N, n + 1) which slots hold
    one: the networks see :func:`queue_input`, normalised with the statistics of the moment, and
    zeros (the normalised space's mean) in reset slots, as the thesis resets the sequence to
    zeros at an episode's end."""

    def __init__(self, n: int, num_envs: int, frame_shape: tuple[int, ...], dtype: torch.dtype) -> None:
        if n < 0:
            raise ConfigError(f"transition length n must be >= 0 (0 is plain RND), got {n}")
        self.n = n
        self.frames = torch.zeros((num_envs, n + 1, *frame_shape), dtype=dtype)  # (N, n + 1, *frame)
        self.valid = torch.zeros((num_envs, n + 1), dtype=torch.bool)  # (N, n + 1)

    def push(
        self, frames: torch.Tensor, only: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps 2-4: forget the oldest, shift, store the newest (N, *frame), in every queue or in
        those ``only`` (N,) bool selects; returns copies of the queues (N, n + 1, *frame) and of
        their valid slots (N, n + 1)."""
        rows = torch.ones(self.frames.shape[0], dtype=torch.bool) if only is None else only
        shifted = torch.cat([self.frames[:, 1:], frames.unsqueeze(1).to(self.frames.dtype)], dim=1)
        newest = torch.ones_like(self.valid[:, :1])
        shifted_valid = torch.cat([self.valid[:, 1:], newest], dim=1)
        self.frames[rows] = shifted[rows]
        self.valid[rows] = shifted_valid[rows]
        return self.frames.clone(), self.valid.clone()

    def reset(self, env_mask: torch.Tensor) -> None:
        """Empty the queues of the environments whose episode ended (``env_mask`` (N,) bool)."""
        self.frames[env_mask] = 0
        self.valid[env_mask] = False

    def state_dict(self) -> dict[str, Any]:
        return {"n": self.n, "frames": self.frames, "valid": self.valid}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["n"]) != self.n or state["frames"].shape != self.frames.shape:
            raise ConfigError(f"checkpoint's transition queue (n={state['n']}) does not fit n={self.n}")
        self.frames, self.valid = state["frames"], state["valid"]


def queue_input(
    frames: torch.Tensor, valid: torch.Tensor, obs_stats: RunningMeanStd, clip: float = 5.0
) -> torch.Tensor:
    """Queues (B, n + 1, *frame) -> the networks' input (B, n + 1, *frame) float32: each frame
    normalised by the observation statistics and clipped to [-clip, clip]; empty slots zero."""
    z = obs_stats.normalise(frames, clip)  # (B, n + 1, *frame)
    mask = valid.reshape(*valid.shape, *([1] * (frames.dim() - 2)))  # (B, n + 1, 1, ...)
    return z * mask
