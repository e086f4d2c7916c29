"""Atari through ale-py with the standard wrappers of the RND paper and of Machado et al. 2018.

- Sticky actions with probability 0.25 (ALE's ``repeat_action_probability``, every frame).
- Frame skip 4: the action repeated for 4 frames, rewards summed, the last two frames max-pooled.
- 84x84 grey frames (ALE's luminance, resized by area averaging), a stack of the last 4.
- Episodes cut at 18,000 frames (4,500 agent steps, the official RND's ``max_episode_steps``).
- Montezuma's Revenge's room is RAM byte 3 (the official release's ``MontezumaInfoWrapper``):
  the exploration counter there. Other games count nothing.

Deviation: no no-op starts (sticky actions already make the starts stochastic, as Machado et al.
recommend); the resize is torch's area interpolation, not OpenCV's (not installed here).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from attnlab.errors import ConfigError

GAMES = ("Breakout", "MontezumaRevenge", "Venture")
FRAME_SKIP, STACK, SIZE = 4, 4, 84
MAX_FRAMES = 18_000
MONTEZUMA_ROOM_BYTE = 3


def atari_ids() -> list[str]:
    return [f"ALE/{game}-v5" for game in GAMES]


class AtariFrames(gym.Wrapper[np.ndarray, int, Any, int]):
    """An ALE environment at frame skip 1 -> (4, 84, 84) uint8 stacks, one action per 4 frames."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, (STACK, SIZE, SIZE), np.uint8)
        self.frames: deque[np.ndarray] = deque(maxlen=STACK)

    @staticmethod
    def _resize(frame: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(frame).float()[None, None]  # (1, 1, 210, 160)
        return F.interpolate(x, size=(SIZE, SIZE), mode="area")[0, 0].round().to(torch.uint8).numpy()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, Any]:
        frame, info = self.env.reset(seed=seed, options=options)
        small = self._resize(frame)
        for _ in range(STACK):
            self.frames.append(small)
        return np.stack(self.frames), info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, Any]:
        total, last_two = 0.0, deque[np.ndarray](maxlen=2)
        terminated = truncated = False
        info: Any = {}
        for _ in range(FRAME_SKIP):
            frame, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            last_two.append(frame)
            if terminated or truncated:
                break
        self.frames.append(self._resize(np.maximum.reduce(list(last_two))))
        return np.stack(self.frames), total, terminated, truncated, info


def make_atari(env_id: str) -> gym.Env[Any, Any]:
    """``ALE/<Game>-v5`` with the wrappers above; missing ale-py or ROMs is one line."""
    if env_id not in atari_ids():
        raise ConfigError(f"unknown Atari environment '{env_id}'; known: {', '.join(atari_ids())}")
    try:
        import ale_py
    except ImportError:
        raise ConfigError(f"'{env_id}' needs ale-py: pip install 'attnlab[rl]'") from None
    gym.register_envs(ale_py)
    try:
        env = gym.make(
            env_id,
            frameskip=1,
            repeat_action_probability=0.25,
            obs_type="grayscale",
            full_action_space=False,
            max_num_frames_per_episode=MAX_FRAMES,
        )
    except Exception as exc:  # ale-py raises its own types when a ROM is missing
        message = " ".join(str(exc).split())
        raise ConfigError(f"cannot create '{env_id}' (ROM support missing?): {message}") from None
    return AtariFrames(env)


def montezuma_room(env: gym.Env[Any, Any]) -> int:
    """The room Montezuma's Revenge shows now (RAM byte 3)."""
    return int(env.unwrapped.ale.getRAM()[MONTEZUMA_ROOM_BYTE])  # type: ignore[attr-defined]
