"""Moving Fashion-MNIST: deterministic clips of real items on IDX files the test writes; motion
pairs hold the same frames in opposite order; labels; splits; one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from attnlab.data.moving_fmnist import (
    ITEM,
    MEAN,
    MOTIONS,
    STD,
    MovingFashionMNISTData,
    camera_reach,
    forward_path,
    render,
    texture,
)
from attnlab.errors import ConfigError
from tests.data.test_idx import fake_mnist


@pytest.fixture
def data(tmp_path: Path) -> MovingFashionMNISTData:
    fake_mnist(tmp_path, n_train=40, n_test=12)
    return MovingFashionMNISTData(
        seed=3, root=str(tmp_path), val_items=8, val_size=6, test_size=5, probe_size=7
    )


def test_clips_are_deterministic_and_shaped(data: MovingFashionMNISTData):
    test = data.dataset("test")
    a, b = test[2], test[2]
    assert a["input"].shape == (1, 8, 48, 48) and a["input"].dtype == torch.float32
    assert torch.equal(a["input"], b["input"]) and int(a["motion"]) == int(b["motion"])
    assert len(test) == 5 and len(data.dataset("val")) == 6 and len(data.probe_dataset()) == 7
    assert data.dataset("train").procedural
    labels = [(int(test[i]["appearance"]), int(test[i]["motion"])) for i in range(5)]
    assert all(0 <= a < 10 and 0 <= m < len(MOTIONS) for a, m in labels)


def test_the_item_is_pasted_where_the_path_says(data: MovingFashionMNISTData):
    """Recompute clip 1 from its draws: the item (brightness as opacity) over the texture."""
    test = data.dataset("test")
    rng = np.random.default_rng([test.seed, 1])
    pick, motion = int(rng.integers(len(test.images))), int(rng.integers(len(MOTIONS)))
    path = forward_path(motion // 2, rng, 8, 48 - ITEM)
    frames = render(test.images[pick], texture(rng, 48), path)
    if motion % 2:
        frames = frames[::-1]
    expected = (torch.from_numpy(frames.copy()).float() - MEAN) / STD
    torch.testing.assert_close(test[1]["input"][0], expected)
    assert int(test[1]["appearance"]) == int(test.labels[pick])
    y, x = np.rint(path[0]).astype(int)
    alpha = test.images[pick] / 255.0
    first = frames[-1] if motion % 2 else frames[0]
    opaque = alpha == 1.0  # where the item is fully opaque the texture does not show through
    assert np.allclose(first[y : y + ITEM, x : x + ITEM][opaque], 1.0)


def test_motion_pairs_differ_only_in_time_order():
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    item = np.random.default_rng(1).integers(0, 256, (ITEM, ITEM)).astype(np.uint8)
    for pattern in range(4):
        forward = render(item, texture(rng_a, 48), forward_path(pattern, rng_a, 8, 20))
        again = render(item, texture(rng_b, 48), forward_path(pattern, rng_b, 8, 20))
        backward = again[::-1]
        assert np.array_equal(forward, backward[::-1])
        assert np.allclose(forward.mean(0), backward.mean(0))  # no time-averaged frame tells them apart
        assert not np.array_equal(forward, backward)  # but the clips differ


def test_paths_move_as_named():
    rng = np.random.default_rng(0)
    right = forward_path(0, rng, 8, 20)
    assert np.all(np.diff(right[:, 1]) > 0) and np.ptp(right[:, 0]) == 0
    down = forward_path(1, rng, 8, 20)
    assert np.all(np.diff(down[:, 0]) > 0) and np.ptp(down[:, 1]) == 0
    speed = np.diff(forward_path(3, rng, 8, 20)[:, 0])
    assert np.all(np.diff(speed) > 0)  # speeding up
    circle = forward_path(2, rng, 8, 20)
    assert np.allclose(np.hypot(circle[:, 0] - 10, circle[:, 1] - 10), 10)
    assert circle.min() >= -1e-9 and circle.max() <= 20 + 1e-9


def test_a_panning_camera_moves_the_view_not_the_scene(tmp_path: Path):
    """With ``camera_speed`` the background of frame t is the scene's window moved by a constant
    velocity, and the item's path *in the scene* (what the motion label names) is the forward path:
    recomputed here from the clip's draws, frame by frame."""
    fake_mnist(tmp_path, n_train=40, n_test=12)
    data = MovingFashionMNISTData(seed=3, root=str(tmp_path), val_items=8, test_size=6, camera_speed=1.5)
    test = data.dataset("test")
    reach = camera_reach(1.5, 8)
    assert reach == 6  # 1.5 px/frame x 3.5 frames from the middle, rounded up
    for index in range(6):
        rng = np.random.default_rng([test.seed, index])
        pick, motion = int(rng.integers(len(test.images))), int(rng.integers(len(MOTIONS)))
        scene_path = reach + forward_path(motion // 2, rng, 8, 48 - ITEM - 2 * reach)
        scene = texture(rng, 48 + 2 * reach)
        velocity = rng.uniform(-1.5, 1.5, size=2)
        clip = test[index]["input"][0].numpy() * STD + MEAN  # (T, S, S) back in [0, 1]
        if motion % 2:
            clip = clip[::-1]
        alpha = test.images[pick] / 255.0
        for t in range(8):
            dy, dx = np.rint((t - 3.5) * velocity).astype(int)
            expected = scene[reach + dy : reach + dy + 48, reach + dx : reach + dx + 48].copy()
            y, x = np.rint(scene_path[t]).astype(int) - (dy, dx)  # scene -> view coordinates
            assert 0 <= y <= 48 - ITEM and 0 <= x <= 48 - ITEM
            patch = expected[y : y + ITEM, x : x + ITEM]
            expected[y : y + ITEM, x : x + ITEM] = patch * (1 - alpha) + alpha
            np.testing.assert_allclose(clip[t], expected, atol=1e-6)


def test_bad_settings_are_one_line(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"camera_speed=3\.0 must be >= 0 and leave the item room"):
        MovingFashionMNISTData(seed=0, root=str(tmp_path), camera_speed=3.0)
    with pytest.raises(ConfigError, match="size >= 28"):
        MovingFashionMNISTData(seed=0, root=str(tmp_path), size=20)
    fake_mnist(tmp_path, n_train=10, n_test=4)
    with pytest.raises(ConfigError, match="val_items=10 must be below"):
        MovingFashionMNISTData(seed=0, root=str(tmp_path), val_items=10).dataset("train")
