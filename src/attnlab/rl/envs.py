"""Gymnasium environments: creation with one-line errors, RNG state, evaluation episodes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from attnlab.errors import ConfigError, did_you_mean
from attnlab.runs.rng import generator_state, set_generator_state

Policy = Callable[[np.ndarray], int]  # one observation -> one discrete action


def make_env(env_id: str) -> gym.Env[Any, Any]:
    """``gym.make(env_id)``; an unknown id is a one-line error with a suggestion."""
    if env_id not in gym.registry:
        raise ConfigError(f"unknown environment '{env_id}'{did_you_mean(env_id, gym.registry)}")
    try:
        return gym.make(env_id)
    except (gym.error.Error, ImportError) as exc:  # e.g. an Atari id without ale-py
        raise ConfigError(f"cannot create environment '{env_id}': {' '.join(str(exc).split())}") from None


@dataclass(frozen=True)
class Spaces:
    obs_dim: int  # entries of one flattened observation
    num_actions: int
    obs_shape: tuple[int, ...]  # of one observation as the environment gives it
    pixels: bool  # uint8 observations in [0, 255] (Atari frames): stored as bytes, scaled to [0, 1]


def discrete_spaces(env: gym.Env[Any, Any], env_id: str) -> Spaces:
    """The sizes a Q-network needs: a flat float Box or uint8 frames, Discrete actions; other
    spaces are a one-line error."""
    obs, act = env.observation_space, env.action_space
    pixels = isinstance(obs, gym.spaces.Box) and obs.dtype == np.uint8
    if not isinstance(obs, gym.spaces.Box) or (len(obs.shape) != 1 and not pixels):
        raise ConfigError(
            f"environment '{env_id}' has observations {obs}; this runner needs a flat Box or uint8 frames"
        )
    if not isinstance(act, gym.spaces.Discrete):
        raise ConfigError(f"environment '{env_id}' has actions {act}; this runner needs Discrete actions")
    shape = tuple(int(n) for n in obs.shape)
    return Spaces(obs_dim=int(np.prod(shape)), num_actions=int(act.n), obs_shape=shape, pixels=pixels)


def env_rng_state(env: gym.Env[Any, Any]) -> dict[str, Any]:
    """The environment's own RNG (what its next ``reset()`` draws from)."""
    return generator_state(env.unwrapped.np_random)


def set_env_rng_state(env: gym.Env[Any, Any], state: dict[str, Any]) -> None:
    set_generator_state(env.unwrapped.np_random, state)


def episode_returns(env: gym.Env[Any, Any], policy: Policy, seeds: Sequence[int]) -> list[float]:
    """Undiscounted return of one episode per seed (``reset(seed=...)``), ``policy`` acting."""
    returns = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def random_policy(num_actions: int, seed: int) -> Policy:
    """Uniformly random actions from its own generator (the floor every agent must beat)."""
    rng = np.random.default_rng(seed)
    return lambda obs: int(rng.integers(num_actions))
