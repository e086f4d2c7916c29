"""Sketch-instructed navigation under DQN: 100-step episodes, waypoints on a schedule, the scripted policy
and its ADE / FDE against a hand computation, the 4 : 2 : 4 test split, both recipes end to end
(ADE / FDE per kind for the agent, the random and the scripted policy), one-line errors."""

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from attnlab.cli import main
from attnlab.errors import ConfigError
from attnlab.rl import navigation as nav
from attnlab.rl import navigation_sketch as sk
from tests.train.conftest import metrics_of

EMPTY = nav.NavConfig(rooms=1, furniture=0, people=0, sketch="equal", waypoints=4)


def file_env(points: tuple[tuple[float, float], ...]) -> nav.NavigationEnv:
    return nav.NavigationEnv(replace(EMPTY, sketch="file", fixed_waypoints=points))


def test_sketch_episodes_end_only_at_max_steps():
    env = file_env(((5.0, 3.0), (5.5, 3.0)))  # facing the east wall 1 m away
    env.reset(seed=0)
    for step in range(1, 101):
        _, reward, terminated, truncated, info = env.step(1)  # forward into the wall
        assert not terminated and truncated == (step == 100)
    assert info["collisions"] > env.config.max_collisions  # six collisions do not end it
    np.testing.assert_allclose(env.batch.pos[0], [5.75, 3.0])  # past the last waypoint, stopped by the wall
    assert reward == pytest.approx(-0.25)


def test_the_waypoints_follow_a_schedule_reached_or_not():
    points = ((1.0, 1.0), (1.5, 1.0), (2.0, 1.0), (2.5, 1.5), (3.0, 2.0))
    env = file_env(points)
    obs, _ = env.reset(seed=0)
    at = 84 * 84 + 4 + 2 * 4  # the observation's waypoint index
    for step in range(1, 101):  # the robot stays: the targets move on without it
        assert obs[at] == min((step - 1) // 25, 3)
        obs, reward, *_ = env.step(0)
        waypoint = points[1 + min((step - 1) // 25, 3)]
        assert reward == pytest.approx(-math.dist((1.0, 1.0), waypoint), rel=1e-6)
    env.reset(seed=0)
    env.step(1)
    env.step(1)  # on waypoint 0 after two steps: it stays the target until step 25
    assert env.batch.target[0] == 0 and env.batch.target_distance()[0] == pytest.approx(0.0)
    with pytest.raises(ConfigError, match="a sketch of 5 waypoints needs max_steps >= 5"):
        replace(EMPTY, waypoints=5, max_steps=4)


def test_the_scripted_policy_and_its_ade_fde_by_hand():
    env = file_env(((1.0, 1.0), (1.6, 1.0), (2.1, 1.0), (2.0, 1.6)))
    assert env.config.steps_per_waypoint == 33  # 3 waypoints over 100 steps
    episode = sk.sketch_episode(env, sk.scripted_policy(env.config), seed=0)
    # by hand: waypoint 0 is the target of steps 1-33, 1 of steps 34-66, 2 of steps 67-100; each time
    # the robot goes forward until one more 0.25 m step would overshoot (0.1 m short), then stops;
    # for the last one it first turns left three times (bearing 90, 60, then 30 deg > 15)
    path = [(1.0, 1.0), (1.25, 1.0)] + [(1.5, 1.0)] * 32  # steps 2-33 end at (1.5, 1)
    path += [(1.75, 1.0)] + [(2.0, 1.0)] * 35  # step 34, then 35-69 (waiting, three turns)
    path += [(2.0, 1.25)] + [(2.0, 1.5)] * 30  # step 70, then 71-100
    assert episode.trajectory.shape == (101, 2) == np.shape(path) and episode.kind == "file"
    np.testing.assert_allclose(episode.trajectory, path, atol=1e-9)
    # nearest trajectory points: (1.5, 1), (2, 1) and (2, 1.5), each 0.1 m from its waypoint
    ade, fde = episode.errors()
    assert ade == pytest.approx(0.1) and fde == pytest.approx(0.1)
    assert episode.collisions == 0


def test_displacement_metrics_per_kind_and_overall_by_hand():
    def episode(kind: str, end: float) -> sk.SketchEpisode:
        trajectory = np.array([[0.0, 0.0], [end, 0.0]])
        waypoints = np.array([[1.0, 0.0], [2.0, 0.0]])
        return sk.SketchEpisode(kind, waypoints, trajectory, np.zeros((0, 4)), 0.0, 0)

    # ADE: mean over the waypoints of the nearest trajectory point (points, not the segments between
    # them: the trajectory (0, 0), (2, 0) passes (1, 0) but is 1 from it); FDE: |end - 2|
    episodes = [episode("equal", 1.0), episode("equal", 2.0), episode("curve", 0.0)]
    metrics = sk.displacement_metrics(episodes, "p/")
    assert metrics["p/ade_equal"] == pytest.approx(((0 + 1) / 2 + (1 + 0) / 2) / 2)
    assert metrics["p/fde_equal"] == pytest.approx((1 + 0) / 2)
    assert metrics["p/ade_curve"] == pytest.approx((1 + 2) / 2) and metrics["p/fde_curve"] == pytest.approx(2)
    assert metrics["p/ade"] == pytest.approx((0.5 + 0.5 + 1.5) / 3) and metrics["p/fde"] == pytest.approx(1)
    assert "p/ade_unequal" not in metrics


def test_the_test_seeds_split_four_two_four_like_the_theses_ten_sketches():
    mixed = replace(EMPTY, sketch="mixed")
    split = sk.kind_seeds(mixed, list(range(50)))
    assert {k: len(v) for k, v in split.items()} == {"equal": 20, "unequal": 10, "curve": 20}
    assert sorted(s for seeds in split.values() for s in seeds) == list(range(50))
    assert {k: len(v) for k, v in sk.kind_seeds(mixed, [7, 8, 9]).items()} == {
        "equal": 1,
        "unequal": 1,
        "curve": 1,
    }
    assert sk.kind_seeds(replace(EMPTY, sketch="curve"), [1, 2]) == {"curve": [1, 2]}
    episodes = sk.sketch_episodes(mixed, sk.scripted_policy(mixed), sk.kind_seeds(mixed, [7, 8, 9]))
    assert [e.kind for e in episodes] == ["equal", "unequal", "curve"]


def test_the_scripted_policy_follows_every_kind_and_the_random_policy_does_not():
    config = nav.ENV_CONFIGS["attnlab/NavSketch-v0"]
    seeds = sk.kind_seeds(config, list(range(100, 110)))
    scripted = sk.displacement_metrics(sk.sketch_episodes(config, sk.scripted_policy(config), seeds), "")
    rng = np.random.default_rng(0)
    floor = sk.displacement_metrics(sk.sketch_episodes(config, lambda obs: int(rng.integers(4)), seeds), "")
    for kind in ("equal", "unequal", "curve"):
        assert scripted[f"ade_{kind}"] < 0.3 and floor[f"ade_{kind}"] > 2 * scripted[f"ade_{kind}"]
    assert scripted["fde"] < 0.5 < floor["fde"]


def test_the_scene_test_is_ten_sketches_four_two_four_in_one_layout():
    config, seeds = sk.scene_test(nav.ENV_CONFIGS["attnlab/NavSketch-v0"])
    assert {kind: len(s) for kind, s in seeds.items()} == {"equal": 4, "unequal": 2, "curve": 4}
    assert len({s for chosen in seeds.values() for s in chosen}) == 10
    episodes = sk.sketch_episodes(config, sk.scripted_policy(config), seeds)
    assert [e.kind for e in episodes] == ["equal"] * 4 + ["unequal"] * 2 + ["curve"] * 4
    assert all(np.array_equal(e.segments, episodes[0].segments) for e in episodes)  # one scene
    starts = {tuple(e.waypoints[0].round(6)) for e in episodes}
    assert len(starts) == 10  # ten different sketches in it
    # the same seeds without the fixed scene draw a layout per episode
    free = sk.sketch_episodes(replace(config, scene_seed=-1), sk.scripted_policy(config), seeds)
    assert not all(np.array_equal(e.segments, free[0].segments) for e in free)
    with pytest.raises(ConfigError, match="scene_seed must be -1"):
        replace(config, scene_seed=-2)


SMOKE = ["--trainer.max_steps", "2", "--trainer.val_every", "2", "--trainer.checkpoint_every", "2"]
SMOKE += ["--trainer.progress_bar", "false", "--dqn.learning_starts", "0", "--dqn.train_every", "1"]
SMOKE += ["--dqn.eval_episodes", "3", "--dqn.buffer_size", "16", "--dqn.batch_size", "2"]


@pytest.mark.parametrize("recipe", ["aqt_sketch-nav", "cnn_sketch-nav"])
def test_the_recipes_report_ade_fde_per_kind_beside_random_and_scripted(recipe: str, tmp_path: Path):
    run_dir = tmp_path / recipe
    assert main(["run", recipe, "--run-dir", str(run_dir), *SMOKE]) == 0
    metrics = metrics_of(run_dir)
    for test in ("test/", "test/scene_"):
        for policy in ("", "random_policy_", "scripted_"):
            for kind in ("", "_equal", "_unequal", "_curve"):
                key = f"{test}{policy}ade{kind}"
                assert math.isfinite(metrics[key]) and metrics[key.replace("ade", "fde")] >= 0, key
    assert metrics["test/scene_scripted_ade"] < metrics["test/scene_random_policy_ade"]
    assert metrics["test/scripted_ade"] < metrics["test/random_policy_ade"]
    assert "test/success_rate" not in metrics  # sketch mode is measured by displacement, not success
    report = (run_dir / "report.md").read_text()
    for picture in ("figures/sketch_trajectories.png", "figures/scene_sketches.png"):
        assert picture in report and (run_dir / picture).is_file()
    assert ("figures/attention_cloud.gif" in report) == (recipe == "aqt_sketch-nav")


def test_a_model_sized_for_another_sketch_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    args = ["run", "aqt_sketch-nav", "--run-dir", str(tmp_path / "r"), "--model.waypoints", "6"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "'attnlab/NavSketch-v0' has observations of length 7080 but model.obs_dim is 7076" in err
    assert len(err.splitlines()) == 1
