"""Synchronous vectorised environments whose whole state fits a weights-only checkpoint.

Every episode of environment ``i`` starts with ``reset(seed=episode_seed(run_seed, i, k))`` (k
counts its episodes), so an environment's state is the pair (episode number, actions since its
reset): resuming replays those actions, and a MiniGrid or ALE environment (sticky actions
included, their RNG is seeded by the reset) arrives where it was. An episode that ends is reset
in the same ``step`` (the returned observation is the new episode's first) and its last
observation is kept in ``final_obs``. An optional ``visit`` function names what the agent
occupies (a MiniGrid cell, a Montezuma room) so exploration can be counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

Visit = Callable[[gym.Env[Any, Any]], int]


def episode_seed(run_seed: int, env_index: int, episode: int) -> int:
    return int(np.random.SeedSequence([run_seed, env_index, episode]).generate_state(1)[0] & 0x7FFFFFFF)


@dataclass
class Finished:
    env_index: int
    episode_return: float
    length: int
    visited: int  # distinct visit keys in the episode (0 without a visit function)


@dataclass
class VecStep:
    obs: np.ndarray  # (N, *obs) after the step: a new episode's first where one ended
    rewards: np.ndarray  # (N,) float32
    terminated: np.ndarray  # (N,) bool
    truncated: np.ndarray  # (N,) bool
    final_obs: np.ndarray  # (N, *obs) the step's own next observation (the last of an ended episode)
    finished: list[Finished]


class SeededVectorEnv:
    def __init__(
        self, make: Callable[[], gym.Env[Any, Any]], num_envs: int, seed: int, visit: Visit | None
    ) -> None:
        self.envs = [make() for _ in range(num_envs)]
        self.seed, self.visit = seed, visit
        self.episodes = [0] * num_envs  # episodes started per environment
        self.actions: list[list[int]] = [[] for _ in range(num_envs)]  # since each one's reset
        self.returns = [0.0] * num_envs
        self.visited_episode: list[set[int]] = [set() for _ in range(num_envs)]
        self.visited_all: set[int] = set()  # over the whole run
        self.obs = np.stack([self._reset(i) for i in range(num_envs)])  # (N, *obs)

    @property
    def num_envs(self) -> int:
        return len(self.envs)

    @property
    def action_space(self) -> gym.spaces.Space[Any]:
        return self.envs[0].action_space

    def _record_visit(self, i: int) -> None:
        if self.visit is not None:
            key = self.visit(self.envs[i])
            self.visited_episode[i].add(key)
            self.visited_all.add(key)

    def _reset(self, i: int) -> np.ndarray:
        obs, _ = self.envs[i].reset(seed=episode_seed(self.seed, i, self.episodes[i]))
        self.episodes[i] += 1
        self.actions[i], self.returns[i], self.visited_episode[i] = [], 0.0, set()
        self._record_visit(i)
        return np.asarray(obs)

    def _step_one(self, i: int, action: int) -> tuple[np.ndarray, float, bool, bool]:
        obs, reward, terminated, truncated, _ = self.envs[i].step(action)
        self.actions[i].append(action)
        self.returns[i] += float(reward)
        self._record_visit(i)
        return np.asarray(obs), float(reward), bool(terminated), bool(truncated)

    def step(self, actions: np.ndarray) -> VecStep:
        n = self.num_envs
        rewards = np.zeros(n, np.float32)
        terminated, truncated = np.zeros(n, bool), np.zeros(n, bool)
        final = np.empty_like(self.obs)
        finished: list[Finished] = []
        for i in range(n):
            obs, rewards[i], terminated[i], truncated[i] = self._step_one(i, int(actions[i]))
            final[i] = obs
            if terminated[i] or truncated[i]:
                finished.append(
                    Finished(i, self.returns[i], len(self.actions[i]), len(self.visited_episode[i]))
                )
                obs = self._reset(i)
            self.obs[i] = obs
        return VecStep(self.obs.copy(), rewards, terminated, truncated, final, finished)

    def state_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "episodes": torch.tensor(self.episodes, dtype=torch.int64),
            "actions": [torch.tensor(a, dtype=torch.int64) for a in self.actions],
            "visited_all": torch.tensor(sorted(self.visited_all), dtype=torch.int64),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replay every environment's current episode up to where the state was taken."""
        self.seed = int(state["seed"])
        for i in range(self.num_envs):
            self.episodes[i] = int(state["episodes"][i]) - 1  # _reset counts the episode again
            self.obs[i] = self._reset(i)
            for action in state["actions"][i].tolist():
                self.obs[i] = self._step_one(i, int(action))[0]
        self.visited_all = set(state["visited_all"].tolist())
