"""n-step transitions for replay (Sutton 1988; Rainbow's multi-step learning, Hessel et al. 2018).

The queue holds the last ``n`` steps of the running episode. Once it is full, each new step
completes the oldest one's transition ``(s_t, a_t, sum_{k<n} gamma^k r_{t+k}, s_{t+n})``. When
the episode ends (terminal state or time limit) every step still queued gets its transition at
once, with the rewards up to the end and ``s'`` the final observation: shorter horizons, whose
bootstrap a terminal state cuts and a time limit does not. With ``n = 1`` it passes steps through.
Between episodes the queue is empty, which is when the DQN runner checkpoints: nothing to save.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from attnlab.errors import ConfigError


@dataclass(frozen=True)
class NStepTransition:
    obs: np.ndarray
    action: int
    reward: float  # the discounted sum of ``horizon`` rewards
    next_obs: np.ndarray  # the observation ``horizon`` steps after ``obs``
    terminated: bool  # the episode reached a terminal state at ``next_obs``
    horizon: int


class NStepQueue:
    """Turns the steps of one environment into n-step transitions."""

    def __init__(self, n: int, gamma: float) -> None:
        if n < 1:
            raise ConfigError(f"n-step returns need n >= 1, got {n}")
        self.n, self.gamma = n, gamma
        self.steps: deque[tuple[np.ndarray, int, float]] = deque()  # (obs, action, reward), oldest first

    def push(
        self,
        obs: np.ndarray,
        action: int,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
        truncated: bool,
    ) -> list[NStepTransition]:
        """Add one step; returns the transitions it completes (oldest first)."""
        self.steps.append((obs, action, reward))
        done: list[NStepTransition] = []
        if len(self.steps) == self.n:
            done.append(self._pop(next_obs, terminated))
        if terminated or truncated:
            while self.steps:
                done.append(self._pop(next_obs, terminated))
        return done

    def _pop(self, next_obs: np.ndarray, terminated: bool) -> NStepTransition:
        """The oldest queued step's transition, with every queued reward after it."""
        total = sum(self.gamma**k * reward for k, (_, _, reward) in enumerate(self.steps))
        obs, action, _ = self.steps.popleft()
        return NStepTransition(obs, action, float(total), next_obs, terminated, len(self.steps) + 1)
