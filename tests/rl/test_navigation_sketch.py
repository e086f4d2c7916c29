"""Sketch mode: waypoint kinds, the thesis's reward, ADE / FDE by hand, waypoint files' errors."""

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from attnlab.errors import ConfigError, InputError
from attnlab.rl import navigation as nav
from attnlab.rl.navigation import NavConfig

SKETCH = NavConfig(rooms=1, furniture=0, people=0, sketch="equal", waypoints=4, waypoint_spacing=0.5)


@pytest.mark.parametrize("kind", ["equal", "unequal", "curve"])
def test_sketch_kinds_have_their_spacing_and_curvature(kind: str):
    rng = np.random.default_rng(0)
    points = nav.sketch_points(
        kind, np.array([1.0, 1.0]), 0.3, replace(SKETCH, sketch=kind, waypoints=6), rng
    )
    steps = np.diff(np.concatenate([[[1.0, 1.0]], points]), axis=0)
    lengths = np.linalg.norm(steps, axis=1)
    turns = np.diff(np.arctan2(steps[:, 1], steps[:, 0]))
    if kind == "equal":
        np.testing.assert_allclose(lengths, 0.5)
        np.testing.assert_allclose(turns, 0.0, atol=1e-12)
        np.testing.assert_allclose(points[0], [1 + 0.5 * math.cos(0.3), 1 + 0.5 * math.sin(0.3)])
    elif kind == "unequal":
        assert lengths.std() > 0.01 and ((lengths >= 0.25) & (lengths <= 0.75)).all()
        np.testing.assert_allclose(turns, 0.0, atol=1e-12)
    else:
        np.testing.assert_allclose(lengths, 0.5)
        assert 0.15 <= abs(turns[0]) <= 0.35
        np.testing.assert_allclose(turns, turns[0])


def test_the_sketch_reward_is_minus_the_distance_to_the_current_waypoint():
    env = nav.NavigationEnv(SKETCH)
    env.reset(seed=1)
    batch = env.batch
    assert batch.goals.shape == (1, 4, 2)
    pos = batch.pos[0].copy()
    _, reward, *_ = env.step(0)  # stop: the robot stays
    assert reward == pytest.approx(-float(np.linalg.norm(batch.goals[0, 0] - pos)))


def test_waypoints_of_a_file_make_the_route(tmp_path: Path):
    path = tmp_path / "sketch.csv"
    path.write_text("# start, then waypoints\n1, 1\n2,1\n3 1\n")
    points = nav.load_waypoints(path, 6.0)
    assert points == ((1.0, 1.0), (2.0, 1.0), (3.0, 1.0))
    env = nav.NavigationEnv(replace(SKETCH, sketch="file", fixed_waypoints=points))
    env.reset(seed=0)
    np.testing.assert_allclose(env.batch.pos[0], [1, 1])
    np.testing.assert_allclose(env.batch.goals[0], [[2, 1], [3, 1]])
    assert env.batch.heading[0] == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds 0 waypoints"),
        ("# only a comment\n", "holds 0 waypoints"),
        ("1, 1\n2, x\n", ":2: expected two numbers 'x, y', got '2, x'"),
        ("1, 1\n2, 3, 4\n", ":2: expected two numbers"),
        ("1, 1\n7, 3\n", ":2: waypoint (7.0, 3.0) is off the 6.0 m map"),
        ("1, 1\n-0.5, 3\n", "off the 6.0 m map"),
    ],
)
def test_bad_waypoint_files_fail_in_one_line(tmp_path: Path, text: str, message: str):
    path = tmp_path / "w.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=None) as err:
        nav.load_waypoints(path, 6.0)
    assert message in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(InputError, match="not found"):
        nav.load_waypoints(tmp_path / "missing.txt", 6.0)


def test_ade_and_fde_by_hand():
    trajectory = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    waypoints = np.array([[1.0, 1.0], [2.0, 0.5]])
    ade, fde = nav.displacement_errors(trajectory, waypoints)
    assert ade == pytest.approx((1.0 + 0.5) / 2) and fde == pytest.approx(0.5)


def test_sketch_configs_are_checked():
    with pytest.raises(ConfigError, match="unknown sketch kind 'curvy'"):
        NavConfig(sketch="curvy")
    with pytest.raises(ConfigError, match="needs fixed_waypoints"):
        NavConfig(sketch="file")


def test_the_sketch_environment_is_registered_and_batched_like_singles():
    batch = nav.make_navigation_batch("attnlab/NavSketch-v0", 3, 5)
    obs = batch.reset()
    singles = [nav.make_navigation("attnlab/NavSketch-v0") for _ in range(3)]
    np.testing.assert_array_equal(obs, np.stack([env.reset(seed=5 + i)[0] for i, env in enumerate(singles)]))
