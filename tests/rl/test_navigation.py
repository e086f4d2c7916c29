"""The navigation simulator against hand-computed views, its dynamics, seeds and the batch."""

import math

import gymnasium as gym
import numpy as np
import pytest

from attnlab.errors import ConfigError
from attnlab.rl import navigation as nav
from attnlab.rl.navigation import NavConfig, NavigationBatch

EMPTY = NavConfig(rooms=1, furniture=0, people=0)


def placed(config: NavConfig, x: float, y: float, heading: float) -> NavigationBatch:
    """A batch of one in ``config``'s world with only the outer walls (6 m square), the robot placed."""
    batch = NavigationBatch(config, 1)
    batch.segments[0] = nav.box_segments(3.0, 3.0, 6.0, 6.0)
    batch.classes[0] = nav.WALL
    batch.pos[0], batch.heading[0] = (x, y), heading
    batch.goals[0] = [[5.5, 5.5]]
    return batch


def test_a_wall_ahead_gives_the_hand_computed_depth_column():
    batch = placed(EMPTY, 3.0, 3.0, 0.0)  # facing +x: the wall x = 6 is 3 m ahead
    batch.observe()
    f = 42 / math.tan(math.radians(45))  # focal length in pixels: 42
    col = 41  # just left of the centre; every column of a flat wall has depth 3 along the axis
    rows = np.arange(84) + 0.5 - 42
    top, bottom = -f * (2.5 - 0.5) / 3.0, f * 0.5 / 3.0  # rows of the wall's top and base: -28, 7
    wall = (rows >= top) & (rows <= bottom)
    np.testing.assert_allclose(batch.depth[0][wall, col], 3.0, rtol=1e-5)
    assert (batch.semantic[0][wall, col] == nav.WALL).all()
    assert (batch.semantic[0][rows > bottom, col] == nav.FLOOR).all()
    assert (batch.semantic[0][rows < top, col] == nav.CEILING).all()
    floor_rows = np.flatnonzero(rows > bottom)
    np.testing.assert_allclose(batch.depth[0][floor_rows, col], f * 0.5 / rows[floor_rows], rtol=1e-5)
    # the left edge column looks 45 deg left: it meets x = 6 before y = 6; z = 3 along the axis too
    np.testing.assert_allclose(batch.depth[0][42, 0], 3.0, rtol=1e-5)


def test_rays_hit_the_nearest_segment_and_its_class():
    segs = np.array([[[2.0, -1.0, 2.0, 1.0], [1.0, -1.0, 1.0, 1.0], [-1.0, 5.0, 1.0, 5.0]]])
    classes = np.array([[nav.WALL, nav.PERSON, nav.FURNITURE]])
    dist, cls = nav.cast_rays(np.zeros((1, 2)), np.array([[0.0, math.pi / 2, math.pi]]), segs, classes)
    np.testing.assert_allclose(dist[0, :2], [1.0, 5.0])
    assert math.isinf(dist[0, 2]) and cls.tolist() == [[nav.PERSON, nav.FURNITURE, nav.CEILING]]


def test_collisions_stop_the_robot_and_are_counted():
    batch = placed(EMPTY, 5.6, 3.0, 0.0)  # 0.4 m from the wall: one step to 0.15 m would collide
    before = batch.pos.copy()
    r = batch.step(np.array([1]))
    np.testing.assert_array_equal(batch.pos, before)
    assert r.collisions.tolist() == [1]
    assert r.rewards[0] == pytest.approx(-0.51)
    batch.step(np.array([2]))  # turn left 30 deg, then forward is free
    batch.step(np.array([2]))
    batch.step(np.array([2]))  # now facing +y
    r = batch.step(np.array([1]))
    np.testing.assert_allclose(batch.pos[0], [5.6, 3.25], atol=1e-9)
    assert r.collisions.tolist() == [1]


def test_reaching_the_goal_ends_with_success_and_too_many_collisions_with_failure():
    batch = placed(EMPTY, 5.0, 5.0, math.pi / 4)
    batch.goals[0] = [[5.3, 5.3]]  # 0.42 m away: one step forward reaches it
    r = batch.step(np.array([1]))
    assert r.terminated.tolist() == [True] and r.success.tolist() == [True]
    assert r.rewards[0] > 10
    batch = placed(NavConfig(rooms=1, furniture=0, people=0, max_collisions=1), 5.7, 3.0, 0.0)
    assert not batch.step(np.array([1])).terminated[0]
    r = batch.step(np.array([1]))
    assert r.terminated.tolist() == [True] and r.success.tolist() == [False]


def test_episodes_are_truncated_at_max_steps():
    batch = placed(NavConfig(rooms=1, furniture=0, people=0, max_steps=3), 3.0, 3.0, 0.0)
    flags = [batch.step(np.array([0])).truncated[0] for _ in range(3)]
    assert flags == [False, False, True]


def test_the_same_seed_gives_the_same_episode_and_another_seed_another():
    def rollout(seed: int) -> list[np.ndarray]:
        env = gym.make("attnlab/Nav-v0")
        obs, _ = env.reset(seed=seed)
        out = [obs]
        for a in [1, 1, 2, 1, 3, 1, 0, 1]:
            out.append(env.step(a)[0])
        return out

    a, b, c = rollout(3), rollout(3), rollout(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def test_the_batch_steps_exactly_like_single_environments():
    n, seed = 5, 11
    batch = nav.make_navigation_batch("attnlab/NavSubgoals-v0", n, seed)
    obs_batch = batch.reset()
    singles = [gym.make("attnlab/NavSubgoals-v0") for _ in range(n)]
    obs_single = [env.reset(seed=seed + i)[0] for i, env in enumerate(singles)]
    np.testing.assert_array_equal(obs_batch, np.stack(obs_single))
    rng = np.random.default_rng(0)
    for _ in range(150):  # long enough for episodes to end and restart
        actions = rng.integers(0, 4, size=n)
        r = batch.step(actions, autoreset=True)
        for i, env in enumerate(singles):
            obs, reward, terminated, truncated, info = env.step(int(actions[i]))
            assert reward == pytest.approx(float(r.rewards[i]), abs=1e-6)
            assert (terminated, truncated) == (r.terminated[i], r.truncated[i])
            assert info["collisions"] == r.collisions[i]
            if terminated or truncated:
                obs, _ = env.reset()
            np.testing.assert_array_equal(obs, r.obs[i])


def test_layouts_have_free_starts_and_goals_in_range():
    batch = nav.make_navigation_batch("attnlab/Nav-v0", 20, 0)
    batch.reset()
    c = batch.config
    assert (nav.segment_distance(batch.pos, batch.segments).min(1) >= 1.5 * c.radius).all()
    dist = np.linalg.norm(batch.goals[:, -1] - batch.pos, axis=1)
    assert ((dist >= c.goal_distance[0]) & (dist <= c.goal_distance[1])).all()
    assert set(np.unique(batch.semantic)) >= {nav.FLOOR, nav.WALL}


def test_unknown_ids_list_the_known_ones_and_bad_configs_are_one_line():
    with pytest.raises(ConfigError, match=r"unknown navigation environment 'attnlab/Nav-v9'.*attnlab/Nav-v0"):
        nav.make_navigation("attnlab/Nav-v9")
    with pytest.raises(ConfigError, match="forward_m < 2 \\* radius"):
        NavConfig(forward_m=0.5)
    with pytest.raises(ConfigError, match="actions must be 2 integers"):
        nav.make_navigation_batch("attnlab/Nav-v0", 2, 0).step(np.array([0, 7]))


def test_depth_points_lie_on_the_floor_the_ceiling_and_the_segments_they_show():
    batch = placed(EMPTY, 2.0, 3.0, 0.3)  # the hand-placed square, facing 17 degrees left of +x
    batch.observe()
    camera = nav.Camera(EMPTY.size, EMPTY.fov_deg, EMPTY.camera_height)
    points = camera.back_project(batch.depth[0], batch.pos[0], 0.3)  # (H, W, 3)
    semantic = batch.semantic[0]
    np.testing.assert_allclose(points[semantic == nav.FLOOR][:, 2], 0.0, atol=1e-4)
    np.testing.assert_allclose(points[semantic == nav.CEILING][:, 2], nav.CEILING_HEIGHT, atol=1e-4)
    walls = points[semantic == nav.WALL]  # on the 6 m square's walls, between floor and wall top
    on_square = np.minimum(np.abs(walls[:, :2] - 0.0), np.abs(walls[:, :2] - 6.0)).min(1)
    assert len(walls) > 100 and on_square.max() < 1e-4
    assert walls[:, 2].min() > -1e-4 and walls[:, 2].max() < nav.HEIGHTS[nav.WALL] + 1e-4
    # the centre column looks along the heading: its wall point is straight ahead of the robot
    col = points[EMPTY.size // 2, [EMPTY.size // 2 - 1, EMPTY.size // 2]].mean(0)
    bearing = math.atan2(col[1] - 3.0, col[0] - 2.0)
    assert bearing == pytest.approx(0.3, abs=0.02)
    env = nav.make_navigation("attnlab/NavEmpty-v0")
    env.reset(seed=0)
    cloud, ids = env.depth_points()
    assert cloud.shape == (EMPTY.size, EMPTY.size, 3) and ids.shape == (EMPTY.size, EMPTY.size)
