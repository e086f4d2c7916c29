"""Per-action attention of aqt-nav: heads averaged from capture, centres of mass by hand, the figure."""

from pathlib import Path

import numpy as np
import pytest
import torch

from attnlab.errors import InputError
from attnlab.explain.capture import capture
from attnlab.models import create_model
from attnlab.rl import navigation_attention as na
from attnlab.rl.navigation import make_navigation


def test_action_maps_are_the_head_mean_of_the_cross_attention():
    torch.manual_seed(0)
    model = create_model("aqt-nav")
    obs, _ = make_navigation("attnlab/Nav-v0").reset(seed=0)
    maps, q = na.action_attention(model, obs)
    with torch.no_grad(), capture(model) as rec:
        expected_q = model(torch.from_numpy(obs)[None]).q_values[0]
    expected = rec[na.CROSS][0].mean(0).view(4, 12, 12)
    np.testing.assert_allclose(maps, expected.numpy(), rtol=0, atol=1e-7)
    np.testing.assert_allclose(q, expected_q.numpy(), rtol=0, atol=1e-7)
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    with pytest.raises(InputError, match="needs an aqt-nav model"):
        na.action_attention(create_model("cnn_dqn-nav"), obs)


def test_centre_of_mass_and_goal_bearing_by_hand():
    maps = np.zeros((2, 4, 4))
    maps[0, :, 0] = 1.0  # all on the left column
    maps[1, 2, 3] = 2.0  # all on the right column
    np.testing.assert_allclose(na.attention_centre_x(maps), [0.125, 0.875])
    obs = np.zeros(10, dtype=np.float32)
    moved = na.with_goal_bearing(obs, np.pi / 2)
    np.testing.assert_allclose(moved[-3:], [0.0, 1.0, 0.0], atol=1e-7)


def test_the_episode_figure_is_written(tmp_path: Path):
    model = create_model("aqt-nav")
    path = na.episode_figure(model, make_navigation("attnlab/Nav-v0"), tmp_path / "f.png", seed=1, frames=2)
    assert path.is_file() and path.stat().st_size > 10_000


def test_meaning_checks_report_every_number_in_range():
    out = na.meaning_checks(create_model("aqt-nav"), make_navigation("attnlab/Nav-v0"), range(2))
    assert set(out) >= {"centre_x_goal_left", "centre_x_goal_right", "fraction_moving_left"}
    assert 0.0 <= out["centre_x_goal_left"] <= 1.0 and 0.0 <= out["fraction_moving_left"] <= 1.0
