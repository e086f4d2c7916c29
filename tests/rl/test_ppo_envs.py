"""MiniGrid and Atari construction (one-line errors) and the replayable vectorised environments."""

import gymnasium as gym
import numpy as np
import pytest

from attnlab.errors import ConfigError
from attnlab.rl import atari_envs
from attnlab.rl.minigrid_envs import OBS_DIM, agent_cell, make_minigrid
from attnlab.rl.vector import SeededVectorEnv


def test_minigrid_views_are_one_hot_per_channel():
    env = make_minigrid("MiniGrid-DoorKey-5x5-v0")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (OBS_DIM,) and obs.dtype == np.float32
    # each of the 49 cells has exactly one object, one colour and one state
    assert obs.reshape(49, 20).sum(axis=1).tolist() == [3.0] * 49


def test_unknown_ids_are_one_line_errors_listing_known_ones():
    with pytest.raises(ConfigError, match=r"unknown MiniGrid environment 'MiniGrid-Nope'.*valid: MiniGrid-"):
        make_minigrid("MiniGrid-Nope")
    with pytest.raises(ConfigError, match="known: ALE/Breakout-v5, ALE/MontezumaRevenge-v5, ALE/Venture-v5"):
        atari_envs.make_atari("ALE/Pong-v5")


def test_missing_rom_support_is_one_line(monkeypatch: pytest.MonkeyPatch):
    def no_rom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Unable to find game 'breakout',\n did you import the ROMs?")

    monkeypatch.setattr(gym, "make", no_rom)
    with pytest.raises(ConfigError) as info:
        atari_envs.make_atari("ALE/Breakout-v5")
    message = str(info.value)
    assert "ROM support missing?" in message and "\n" not in message


def test_loading_a_state_replays_every_environment_to_where_it_was():
    def make() -> gym.Env:
        return make_minigrid("MiniGrid-DoorKey-5x5-v0")

    envs = SeededVectorEnv(make, 3, seed=7, visit=agent_cell)
    rng = np.random.default_rng(0)
    for _ in range(300):  # past the 250-step limit: every environment is in its second episode
        envs.step(rng.integers(7, size=3))
    state = envs.state_dict()
    assert state["episodes"].tolist() == [2, 2, 2]
    again = SeededVectorEnv(make, 3, seed=7, visit=agent_cell)
    again.load_state_dict(state)
    assert np.array_equal(again.obs, envs.obs)
    assert [e.unwrapped.agent_pos for e in again.envs] == [e.unwrapped.agent_pos for e in envs.envs]
    actions = rng.integers(7, size=3)
    assert np.array_equal(again.step(actions).obs, envs.step(actions).obs)
    assert again.visited_all == envs.visited_all
