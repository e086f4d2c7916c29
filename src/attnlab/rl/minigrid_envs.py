"""MiniGrid environments (Chevalier-Boisvert et al. 2023, ``minigrid`` package) for PPO and RND.

The agent sees MiniGrid's partial 7x7 egocentric view (object, colour, state per cell), each
channel one-hot (11 objects + 6 colours + 3 states = 20 per cell) and flattened to 980 floats, so
one MLP fits every task (an MLP learns from categories far better than from their index). The
exploration counter is the agent's cell ``(x, y)``, encoded as one int.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from attnlab.errors import ConfigError, unknown

# values of MiniGrid's object, colour and state channels (minigrid.core.constants)
_CHANNEL_SIZES = (11, 6, 3)
_OFFSETS = np.array([0, 11, 17])
OBS_DIM = 7 * 7 * sum(_CHANNEL_SIZES)


def _import_minigrid() -> None:
    try:
        import minigrid  # noqa: F401  (registers the MiniGrid-* ids)
    except ImportError:
        raise ConfigError(
            "MiniGrid environments need the 'minigrid' package: pip install 'attnlab[rl]'"
        ) from None


def minigrid_ids() -> list[str]:
    _import_minigrid()
    return sorted(name for name in gym.registry if name.startswith("MiniGrid-"))


class FlatView(gym.ObservationWrapper[np.ndarray, Any, Any]):
    """MiniGrid's dict observation -> its 7x7x3 view one-hot per channel, (980,) float32."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (OBS_DIM,), np.float32)

    def observation(self, observation: Any) -> np.ndarray:
        image = np.asarray(observation["image"], dtype=np.int64).reshape(49, 3) + _OFFSETS  # (49, 3)
        onehot = np.zeros((49, sum(_CHANNEL_SIZES)), dtype=np.float32)  # (49, 20)
        np.put_along_axis(onehot, image, 1.0, axis=1)
        return onehot.reshape(-1)  # (980,)


def make_minigrid(env_id: str) -> gym.Env[Any, Any]:
    """A MiniGrid task with flat observations; an unknown id lists the known ones."""
    known = minigrid_ids()
    if env_id not in known:
        raise unknown("MiniGrid environment", env_id, known)
    return FlatView(gym.make(env_id))


def agent_cell(env: gym.Env[Any, Any]) -> int:
    """The agent's cell as one int (x * 1024 + y)."""
    x, y = env.unwrapped.agent_pos  # type: ignore[attr-defined]
    return int(x) * 1024 + int(y)
