import numpy as np
import pytest
import torch

from attnlab.data.actions import ACTIONS, ActionClips, ActionsData, _render, _tracks
from attnlab.errors import ConfigError

T, SIZE = 12, 40


def clip(label: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render ``label`` from a fixed random stream, so two labels share every random choice."""
    tracks = _tracks(label, np.random.default_rng(seed), T, SIZE)
    return _render(tracks, np.random.default_rng(seed + 1), T, SIZE)


@pytest.mark.parametrize(("forward", "backward"), [(0, 1), (2, 3)])
def test_paired_classes_are_the_same_frames_in_reverse_order(forward: int, backward: int):
    video_f, boxes_f, _ = clip(forward)
    video_b, boxes_b, _ = clip(backward)
    assert np.array_equal(video_b, video_f[:, ::-1])
    assert np.array_equal(boxes_b, boxes_f[::-1])
    assert not np.array_equal(video_f[:, 0], video_f[:, -1])  # and there is motion


def test_pretending_starts_and_ends_like_static_but_differs_in_the_middle():
    pretend, _, _ = clip(ACTIONS.index("pretending to put something behind something"))
    static, _, _ = clip(ACTIONS.index("static"))
    assert np.array_equal(pretend[:, 0], static[:, 0]) and np.array_equal(pretend[:, -1], static[:, -1])
    assert not np.array_equal(pretend[:, T // 2], static[:, T // 2])


def test_putting_behind_ends_hidden():
    _, _, visible = clip(ACTIONS.index("putting something behind something"))
    assert visible[0, 0] and not visible[-1, 0] and visible[:, 1].all()


def test_boxes_enclose_exactly_the_visible_pixels_of_their_object():
    for label in range(len(ACTIONS)):
        video, boxes, visible = clip(label, seed=label)
        tracks = _tracks(label, np.random.default_rng(label), T, SIZE)
        for f in range(T):
            for i in range(min(2, len(tracks))):
                colour = np.asarray(tracks[i]["colour"])
                painted = np.all(np.abs(video[:, f] - colour[:, None, None]) < 1e-6, axis=0)
                if not visible[f, i]:
                    assert not painted.any()
                    continue
                ys, xs = np.nonzero(painted)
                assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == tuple(boxes[f, i].astype(int))


def test_colliding_objects_stay_in_frame_and_meet_in_the_middle():
    _, boxes, visible = clip(ACTIONS.index("two objects colliding"))
    assert visible.all()
    gaps = boxes[:, 1, 0] - boxes[:, 0, 2]  # left edge of the right object - right edge of the left one
    assert gaps[0] > gaps[T // 2] and gaps[-1] > gaps[T // 2]
    assert (boxes[:, :, [0, 1]] >= 0).all() and (boxes[:, :, [2, 3]] <= SIZE).all()


def test_dataset_is_deterministic_covers_every_class_and_validates():
    data = ActionClips(num_frames=T, size=SIZE, seed=3, length=300)
    a, b = data[5], ActionClips(num_frames=T, size=SIZE, seed=3, length=300)[5]
    assert torch.equal(a["input"], b["input"]) and a["input"].shape == (3, T, SIZE, SIZE)
    assert {int(data[i]["label"]) for i in range(len(data))} == set(range(len(ACTIONS)))
    assert ActionsData.num_classes == len(ACTIONS)
    with pytest.raises(ConfigError):
        ActionsData(seed=0, num_frames=2)
