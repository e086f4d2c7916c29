"""A replay buffer for observations whose leading entries are small integers (the navigation
simulator's class ids): those are kept as uint8, the rest as float32, so that a 84x84 view costs
7 KB per observation instead of 28 KB. Same interface and sampling as
:class:`attnlab.rl.replay.ReplayBuffer` (uniform with replacement, from the same generator calls).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from attnlab.errors import ConfigError
from attnlab.rl.replay import Transitions

FIELDS = ("obs_bytes", "obs_rest", "actions", "rewards", "next_bytes", "next_rest", "terminated")
# written since n-step returns; a checkpoint without them holds one-step transitions
OPTIONAL = {"horizons": 1}


class ByteReplayBuffer:
    """A ring of the last ``capacity`` transitions; observation entries [:byte_dim] stored as uint8."""

    def __init__(self, capacity: int, obs_dim: int, byte_dim: int) -> None:
        if capacity < 1 or not 0 < byte_dim <= obs_dim:
            raise ConfigError(
                f"replay buffer: need capacity >= 1, 0 < byte_dim <= {obs_dim}; got {capacity}, {byte_dim}"
            )
        self.capacity, self.byte_dim = capacity, byte_dim
        rest = obs_dim - byte_dim
        self.obs_bytes = torch.zeros(capacity, byte_dim, dtype=torch.uint8)
        self.obs_rest = torch.zeros(capacity, rest)
        self.next_bytes = torch.zeros(capacity, byte_dim, dtype=torch.uint8)
        self.next_rest = torch.zeros(capacity, rest)
        self.actions = torch.zeros(capacity, dtype=torch.long)
        self.rewards = torch.zeros(capacity)
        self.terminated = torch.zeros(capacity, dtype=torch.bool)
        self.horizons = torch.ones(capacity, dtype=torch.long)
        self.pos = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def _split(self, obs: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        flat = np.asarray(obs, dtype=np.float32)
        head = flat[: self.byte_dim]
        if (
            head.min(initial=0.0) < 0
            or head.max(initial=0.0) > 255
            or not np.array_equal(head, np.round(head))
        ):
            raise ConfigError("observation entries stored as bytes must be integers in [0, 255]")
        return torch.from_numpy(head.astype(np.uint8)), torch.from_numpy(flat[self.byte_dim :].copy())

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
        self.obs_bytes[i], self.obs_rest[i] = self._split(obs)
        self.next_bytes[i], self.next_rest[i] = self._split(next_obs)
        self.actions[i], self.rewards[i], self.terminated[i] = action, reward, terminated
        self.horizons[i] = horizon
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        return i

    def sample(self, batch_size: int, rng: np.random.Generator) -> Transitions:
        return self.gather(torch.from_numpy(rng.integers(0, self.size, size=batch_size)))

    def gather(self, idx: torch.Tensor) -> Transitions:
        """The transitions in slots ``idx`` (B,) int64."""
        obs = torch.cat([self.obs_bytes[idx].float(), self.obs_rest[idx]], dim=1)  # (B, obs_dim)
        nxt = torch.cat([self.next_bytes[idx].float(), self.next_rest[idx]], dim=1)  # (B, obs_dim)
        return Transitions(
            obs, self.actions[idx], self.rewards[idx], nxt, self.terminated[idx], self.horizons[idx]
        )

    def state_dict(self) -> dict[str, Any]:
        n = self.size
        state: dict[str, Any] = {
            "capacity": self.capacity,
            "byte_dim": self.byte_dim,
            "pos": self.pos,
            "size": n,
        }
        return state | {name: getattr(self, name)[:n].clone() for name in (*FIELDS, *OPTIONAL)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("capacity") != self.capacity or state.get("byte_dim") != self.byte_dim:
            raise ConfigError(
                f"the checkpoint's replay buffer ({state.get('capacity')} transitions, "
                f"{state.get('byte_dim')} byte entries) does not fit this one "
                f"({self.capacity}, {self.byte_dim})"
            )
        n = state["size"]
        self.pos, self.size = state["pos"], n
        for name in FIELDS:
            getattr(self, name)[:n] = state[name]
        for name, default in OPTIONAL.items():
            getattr(self, name)[:n] = state.get(name, default)
