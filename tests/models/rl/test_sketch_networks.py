"""The sketch-instructed navigation networks (aqt_sketch-nav, cnn_sketch-nav): the simulator's sketch
observation as they read it, the Instruction Phase, the instruction feature of the step, the action
queries and the CNN's Q-Head input by hand, attention through capture, one-line errors."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.explain.capture import capture
from attnlab.models import create_model
from attnlab.models.rl import nav_obs
from attnlab.rl import navigation

NAMES = ["aqt_sketch-nav", "cnn_sketch-nav"]


def sketch_obs(seed: int, steps: int = 0) -> tuple[np.ndarray, navigation.NavigationEnv]:
    env = navigation.make_navigation("attnlab/NavSketch-v0")
    obs, _ = env.reset(seed=seed)
    for action in [1, 2, 1][:steps]:
        obs, *_ = env.step(action)
    return obs, env


def inputs_of(module: nn.Module, model: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    """What ``module`` was called with (its first argument) during ``model(obs)``."""
    seen: list[torch.Tensor] = []
    handle = module.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    try:
        with torch.no_grad():
            model(obs)
    finally:
        handle.remove()
    return seen[0]


def test_the_observation_holds_the_view_pose_waypoints_index_and_goal():
    obs, env = sketch_obs(3, steps=3)
    b, m = env.batch, env.config.map_size
    assert obs.shape == (84 * 84 + 4 + 8 * 2 + 1 + 3,) == (env.config.obs_dim,)
    assert env.observation_space.contains(obs)
    view = nav_obs.split_sketch_observation(
        torch.from_numpy(obs)[None], 84, 8, nav_obs.palette_tensor(nav_obs.PALETTE), "test"
    )
    expected = torch.from_numpy(env.render()).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(view.image[0], expected)
    pose = [b.pos[0, 0] / m, b.pos[0, 1] / m, math.sin(b.heading[0]), math.cos(b.heading[0])]
    torch.testing.assert_close(view.pose[0], torch.tensor(pose, dtype=torch.float32))
    torch.testing.assert_close(view.waypoints[0], torch.from_numpy(b.goals[0] / m).float())
    assert int(view.index[0]) == int(b.target[0])
    goal = b.goals[0, b.target[0]] - b.pos[0]  # the plain layout's goal stays last
    bearing = math.atan2(goal[1], goal[0]) - b.heading[0]
    np.testing.assert_allclose(
        obs[-3:], [np.linalg.norm(goal) / m, math.sin(bearing), math.cos(bearing)], rtol=1e-5, atol=1e-6
    )


def test_the_sketch_as_the_robot_sees_it():
    pose = torch.tensor([[0.5, 0.5, 1.0, 0.0]])  # at the centre, facing +y (heading 90 deg)
    points = torch.tensor([[[0.5, 0.7], [0.3, 0.5], [0.6, 0.4]]])  # ahead, to the left, behind-right
    expected = torch.tensor([[[0.2, 0.0], [0.0, 0.2], [-0.1, -0.1]]])
    torch.testing.assert_close(nav_obs.robot_frame(points, pose), expected)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_the_instruction_phase(name: str):
    model = create_model(name).eval()
    obs = model.example_inputs(3)["obs"]
    assert model(obs).q_values.shape == (3, 4)
    waypoints = torch.rand(3, 8, 2)
    features = model.instruction(waypoints)
    assert features.shape == (3, 8, 64)
    k, i = torch.arange(8.0)[:, None], torch.arange(32.0)[None, :]  # Vaswani et al.'s sinusoids
    angles = k / 10000 ** (i / 32)
    torch.testing.assert_close(model.instruction.pos, torch.cat([angles.sin(), angles.cos()], dim=1))
    # self-attention among the waypoints: waypoint 5 changes the feature of waypoint 0;
    # the positional encoding: the features of the reversed sketch are not the features reversed
    moved = waypoints.clone()
    moved[:, 5] += 0.3
    assert not torch.allclose(model.instruction(moved)[:, 0], features[:, 0])
    assert not torch.allclose(model.instruction(waypoints.flip(1)), features.flip(1), atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_each_step_reads_the_instruction_feature_of_its_waypoint_seen_from_the_robot(name: str):
    model = create_model(name).eval()
    obs = model.example_inputs(4)["obs"]
    at = 84 * 84 + 4 + 16
    obs[:, at] = torch.tensor([0.0, 3.0, 7.0, 5.0])  # the index of the step's waypoint
    x, y, sin, cos = obs[:, 84 * 84 : 84 * 84 + 4].T.tolist()
    world = obs[:, 84 * 84 + 4 : at].view(4, 8, 2).tolist()
    seen_by_robot = [  # each waypoint (ahead, to the left) of the robot, by hand
        [
            [(wx - x[b]) * cos[b] + (wy - y[b]) * sin[b], (wy - y[b]) * cos[b] - (wx - x[b]) * sin[b]]
            for wx, wy in row
        ]
        for b, row in enumerate(world)
    ]
    with torch.no_grad():
        features = model.instruction(torch.tensor(seen_by_robot))  # (4, 8, 64)
    step = features[torch.arange(4), torch.tensor([0, 3, 7, 5])]  # (4, 64)
    head = model.query_branch if name == "aqt_sketch-nav" else model.q_head[0]
    seen = inputs_of(head, model, obs)
    torch.testing.assert_close(seen.reshape(-1, seen.shape[-1])[..., -64:].view(4, -1, 64)[:, 0], step)
    with torch.no_grad():
        before = model(obs).q_values
        obs[:, at] = torch.tensor([1.0, 4.0, 6.0, 2.0])
        assert not torch.allclose(model(obs).q_values, before)  # another waypoint, other Q-values


def test_action_queries_are_a_linear_map_of_one_hot_pose_and_instruction():
    model = create_model("aqt_sketch-nav").eval()
    pose, instruction = torch.randn(3, 4), torch.randn(3, 64)
    w, b = model.query_branch.weight, model.query_branch.bias  # (64, 4 + 4 + 64)
    queries = model.queries(pose, instruction)
    assert queries.shape == (3, 4, 64)
    for a in range(4):
        torch.testing.assert_close(queries[:, a], w[:, a] + pose @ w[:, 4:8].T + instruction @ w[:, 8:].T + b)
    obs = model.example_inputs(3)["obs"]
    seen = inputs_of(model.query_branch, model, obs)  # (3, 4 actions, 4 + 4 + 64) in the forward
    torch.testing.assert_close(seen[:, :, :4], torch.eye(4).expand(3, 4, 4))
    pose = obs[:, 84 * 84 : 84 * 84 + 4]
    torch.testing.assert_close(seen[:, :, 4:8], pose[:, None, :].expand(3, 4, 4))


def test_the_cnn_q_head_joins_image_features_position_head_and_instruction():
    model = create_model("cnn_sketch-nav").eval()
    obs = model.example_inputs(2)["obs"]
    seen = inputs_of(model.q_head, model, obs)
    assert seen.shape == (2, 64 * 7 * 7 + 64 + 64)
    view = nav_obs.split_sketch_observation(obs, 84, 8, model.palette, "test")
    with torch.no_grad():
        torch.testing.assert_close(seen[:, :3136], model.image_features(view.image).flatten(1))
        torch.testing.assert_close(seen[:, 3136:3200], torch.relu(model.position_head[0](view.pose)))


def test_capture_gives_each_action_querys_cross_attention_and_the_sketchs_self_attention():
    model = create_model("aqt_sketch-nav").eval()
    obs = model.example_inputs(2)["obs"]
    cross_attn = model.decoder.layers[0].cross_attn
    called: list[tuple[torch.Tensor, torch.Tensor]] = []
    handle = cross_attn.register_forward_pre_hook(lambda _m, args: called.append((args[0], args[1])))
    with torch.no_grad(), capture(model) as rec:
        model(obs)
    handle.remove()
    assert rec["instruction.encoder.layers.0.self_attn"].shape == (2, 4, 8, 8)
    assert rec["encoder.layers.0.self_attn"].shape == (2, 4, 144, 144)
    cross = rec["decoder.layers.0.cross_attn"]
    assert cross.shape == (2, 4, 4, 144)  # (B, heads, actions, patches)
    tgt, memory = called[0]  # softmax(q k^T / sqrt(16)) by hand from the layer's own projections
    with torch.no_grad():
        q = cross_attn.q_proj(tgt).view(2, 4, 4, 16).transpose(1, 2)  # (B, H, A, Dh)
        k = cross_attn.kv_proj(memory)[..., :64].view(2, 144, 4, 16).transpose(1, 2)  # (B, H, 144, Dh)
        expected = torch.softmax(q @ k.transpose(-1, -2) / 4.0, dim=-1)
    torch.testing.assert_close(cross, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_q_values_follow_the_simulators_observation_and_bad_shapes_are_one_line(name: str):
    model = create_model(name).eval()
    obs, _ = sketch_obs(0)
    with torch.no_grad():
        assert model(torch.from_numpy(obs)[None]).q_values.shape == (1, 4)
    with pytest.raises(InputError, match=r"takes float sketch navigation observations \(B, 7080\)") as err:
        model(torch.from_numpy(obs)[None, :-1])
    assert "\n" not in str(err.value)
    plain = navigation.make_navigation("attnlab/Nav-v0").reset(seed=0)[0]
    with pytest.raises(InputError, match=r"got torch.float32 \(1, 7059\)"):
        model(torch.from_numpy(plain)[None])


def test_bad_configs_are_one_line():
    with pytest.raises(InputError, match="not a multiple of 7"):
        create_model("aqt_sketch-nav", image_size=90)
    with pytest.raises(InputError, match="at least 36x36"):
        create_model("cnn_sketch-nav", image_size=32)
    assert create_model("cnn_sketch-nav", image_size=128).q_head[0].in_features == 64 * 12 * 12 + 128
    model = create_model("aqt_sketch-nav", image_size=128, patch_size=8)
    assert model.pos_embed.shape == (256, 64)


def test_the_thesis_size_view_fits_the_networks_at_128():
    obs, _ = navigation.make_navigation("attnlab/NavSketch128-v0").reset(seed=0)
    x = torch.from_numpy(obs)[None]
    for model in (
        create_model("aqt_sketch-nav", image_size=128, patch_size=8),
        create_model("cnn_sketch-nav", image_size=128),
    ):
        assert model.config.obs_dim == obs.shape[0] == 128 * 128 + 24
        with torch.no_grad():
            assert torch.isfinite(model.eval()(x).q_values).all()
