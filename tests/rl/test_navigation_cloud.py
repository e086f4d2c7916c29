"""The navigation AQT's attention on the depth points: patch weights per pixel, where a patch's
points land in the robot's view, and the episode's PNG and GIF."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from attnlab.models import create_model
from attnlab.rl import navigation_cloud as nc
from attnlab.rl.navigation import make_navigation


def test_pixel_weights_give_each_pixel_its_patch():
    weights = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(nc.pixel_weights(weights, 4), np.kron(weights, np.ones((2, 2))))
    # 3 pixels over 2 patches: pixel rows 0, 1 in patch 0 (0 * 2 // 3, 1 * 2 // 3), row 2 in patch 1
    np.testing.assert_array_equal(nc.pixel_weights(weights, 3), [[1, 1, 2], [1, 1, 2], [3, 3, 4]])


def test_a_hot_patch_lights_its_own_pixels_in_the_robots_view():
    env = make_navigation("attnlab/NavEmpty-v0")
    env.reset(seed=3)
    weights = np.zeros((12, 12))
    weights[7, 3] = 1.0  # view rows 49..55 (below the horizon: floor or walls, never ceiling), cols 21..27
    frame = nc.cloud_frame(env, weights)
    width, height = nc.VIEW
    assert frame.shape == (height, 2 * width + 4, 3)
    own = frame[:, :width]
    red = np.argwhere((own == [128, 0, 0]).all(-1))  # jet's top colour: the hot patch's points
    assert len(red) > 20
    # the robot's 90-degree camera at 200 px: focal 100 against the view's 42, so pixel (r, c) of the
    # 84 x 84 view lands near (100 + 100 (r + 0.5 - 42) / 42, 100 + 100 (c + 0.5 - 42) / 42)
    rows = 100 + 100 * (np.array([49, 56]) - 42) / 42
    cols = 100 + 100 * (np.array([21, 28]) - 42) / 42
    assert rows[0] - 1 <= red[:, 0].min() and red[:, 0].max() <= rows[1] + 1
    assert cols[0] - 1 <= red[:, 1].min() and red[:, 1].max() <= cols[1] + 1
    third = frame[:, width + 4 :]
    assert (third == [0, 0, 0]).all(-1).sum() > 5  # the robot's black post seen from behind


def test_episode_clouds_write_the_first_step_and_the_episode(tmp_path: Path):
    torch.manual_seed(0)
    model = create_model("aqt-nav")
    pictures = nc.episode_clouds(model, make_navigation("attnlab/Nav-v0"), tmp_path, seed=1, steps=3)
    png, gif = pictures.values()
    assert png.name == "attention_cloud.png" and gif.name == "attention_cloud.gif"
    first = np.asarray(Image.open(png).convert("RGB"))
    assert first.shape == (nc.VIEW[1], 2 * nc.VIEW[0] + 4, 3)
    with Image.open(gif) as frames:  # identical steps are merged into one longer frame
        durations = [frame.info["duration"] for frame in ImageSequence.Iterator(frames)]
    assert sum(durations) == 3 * nc.FRAME_MS


def test_the_command_draws_a_run_and_a_wrong_run_is_one_line(tmp_path: Path, capsys):
    from safetensors.torch import save_file

    run = tmp_path / "run"
    run.mkdir()
    save_file(create_model("aqt-nav").state_dict(), run / "model.safetensors")
    (run / "config.yaml").write_text("model:\n  name: aqt-nav\ndqn:\n  env: attnlab/Nav-v0\n")
    nc.main([str(run), str(tmp_path / "out"), "--steps", "2"])
    assert (tmp_path / "out/attention_cloud.gif").is_file()
    (run / "config.yaml").write_text("model:\n  name: cnn_dqn-nav\ndqn:\n  env: attnlab/Nav-v0\n")
    save_file(create_model("cnn_dqn-nav").state_dict(), run / "model.safetensors")
    with pytest.raises(SystemExit, match="needs an aqt-nav model"):
        nc.main([str(run), str(tmp_path / "out2")])
