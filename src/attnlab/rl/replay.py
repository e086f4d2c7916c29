"""A uniform replay buffer of transitions (s, a, r, s', terminated, n), checkpointable as tensors.

``n`` (``horizons``) is the number of rewards summed into ``r`` by an n-step queue
(:mod:`attnlab.rl.nstep`); 1 for one-step transitions, and for checkpoints written before it was kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from attnlab.errors import ConfigError


@dataclass
class Transitions:
    obs: torch.Tensor  # (B, obs_dim) float32
    actions: torch.Tensor  # (B,) int64
    rewards: torch.Tensor  # (B,) float32
    next_obs: torch.Tensor  # (B, obs_dim) float32, the observation after the action (final one at an end)
    terminated: torch.Tensor  # (B,) bool: the episode ended in a terminal state (not a time limit)
    horizons: torch.Tensor  # (B,) int64: the rewards summed into ``rewards`` (n-step)

    def to(self, device: torch.device) -> Transitions:
        return Transitions(*(t.to(device) for t in vars(self).values()))


class ReplayBuffer:
    """A ring of the last ``capacity`` transitions; ``sample`` draws uniformly with replacement."""

    def __init__(self, capacity: int, obs_dim: int) -> None:
        if capacity < 1:
            raise ConfigError(f"the replay buffer's capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.obs = torch.zeros(capacity, obs_dim)
        self.actions = torch.zeros(capacity, dtype=torch.long)
        self.rewards = torch.zeros(capacity)
        self.next_obs = torch.zeros(capacity, obs_dim)
        self.terminated = torch.zeros(capacity, dtype=torch.bool)
        self.horizons = torch.ones(capacity, dtype=torch.long)
        self.pos = 0  # where the next transition goes
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: np.ndarray,
        action: int,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
        horizon: int = 1,
    ) -> int:
        """Store a transition; returns the slot it took (what prioritised replay keys on)."""
        i = self.pos
        self.obs[i] = torch.from_numpy(np.asarray(obs, dtype=np.float32))
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_obs[i] = torch.from_numpy(np.asarray(next_obs, dtype=np.float32))
        self.terminated[i] = terminated
        self.horizons[i] = horizon
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        return i

    def sample(self, batch_size: int, rng: np.random.Generator) -> Transitions:
        return self.gather(torch.from_numpy(rng.integers(0, self.size, size=batch_size)))

    def gather(self, idx: torch.Tensor) -> Transitions:
        """The transitions in slots ``idx`` (B,) int64."""
        return Transitions(
            self.obs[idx],
            self.actions[idx],
            self.rewards[idx],
            self.next_obs[idx],
            self.terminated[idx],
            self.horizons[idx],
        )

    def state_dict(self) -> dict[str, Any]:
        n = self.size  # only the filled part: a young buffer makes a small checkpoint
        return {
            "capacity": self.capacity,
            "pos": self.pos,
            "size": n,
            "obs": self.obs[:n].clone(),
            "actions": self.actions[:n].clone(),
            "rewards": self.rewards[:n].clone(),
            "next_obs": self.next_obs[:n].clone(),
            "terminated": self.terminated[:n].clone(),
            "horizons": self.horizons[:n].clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["capacity"] != self.capacity or state["obs"].shape[1:] != self.obs.shape[1:]:
            raise ConfigError(
                f"the checkpoint's replay buffer ({state['capacity']} x {tuple(state['obs'].shape[1:])}) "
                f"does not fit this one ({self.capacity} x {tuple(self.obs.shape[1:])})"
            )
        n = state["size"]
        self.pos, self.size = state["pos"], n
        for name in ("obs", "actions", "rewards", "next_obs", "terminated"):
            getattr(self, name)[:n] = state[name]
        self.horizons[:n] = state.get("horizons", 1)
