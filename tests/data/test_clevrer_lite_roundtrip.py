"""Generated datasets read back through our CLEVRER reader."""

import json

import numpy as np
import pytest
import torch

from attnlab.data.clevrer import ClevrerVideos, read_annotation, read_questions, read_video
from attnlab.data.clevrer_lite import (
    ClevrerLiteConfig,
    annotation_path,
    generate_dataset,
    generate_video,
    mask_path,
    read_masks,
    video_path,
)
from attnlab.errors import InputError

CONFIG = ClevrerLiteConfig(num_frames=16, predict_frames=8)
SEED = 4


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("clevrer_lite")
    summary = generate_dataset(CONFIG, root, num_videos=3, seed=SEED, workers=1, progress=False)
    return root, summary


def test_the_reader_loads_what_the_generator_made(dataset):
    root, summary = dataset
    assert summary.num_videos == 3 and summary.num_questions["descriptive"] > 0
    data = ClevrerVideos(
        root / "videos",
        annotation_dir=root / "annotations",
        question_file=root / "questions.json",
        size=None,
    )
    assert len(data) == 3
    for i in range(3):
        made = generate_video(CONFIG, SEED, i)
        scene = made.scene
        sample = data[i]
        video = sample["video"].permute(0, 2, 3, 1).numpy() * 255  # (T, H, W, 3)
        assert video.shape == made.frames.shape == (16, 64, 64, 3)
        assert np.abs(video - made.frames).mean() < 4  # H.264 in yuv420p: close, not exact
        k = scene.num_objects
        assert sample["object_mask"].sum() == k
        assert torch.equal(sample["in_view"][:, :k], torch.from_numpy(scene.in_view[:16]))
        np.testing.assert_allclose(
            sample["locations"][:, :k, :2].numpy(), scene.trajectory.positions[:16], atol=1e-4
        )
        ann = data.annotation(i)
        shown = [c for c in scene.trajectory.contacts if c.frame < 16]
        assert [(c.objects, c.frame) for c in ann.collisions] == [((c.i, c.j), c.frame) for c in shown]
        assert [(o.color, o.material, o.shape) for o in ann.objects] == [
            (o.color, o.material, o.shape) for o in scene.objects
        ]
        masks = read_masks(mask_path(root, i))
        np.testing.assert_array_equal(masks["ids"], made.ids)
        visible = (masks["ids"][:, None] == np.arange(1, k + 1)[None, :, None, None]).any(axis=(2, 3))
        assert not (visible & ~ann.in_view).any()  # every visible mask belongs to an object in view
        assert masks["locations"].shape == (24, k, 3) and masks["in_view"].shape == (24, k)
        assert [tuple(c) for c in masks["collisions"]] == [
            (c.frame, c.i, c.j) for c in scene.trajectory.contacts
        ]
        assert [q["question_id"] for q in data.questions(i)] == list(range(len(data.questions(i))))


def test_files_follow_clevrers_layout(dataset):
    root, _ = dataset
    assert video_path(root, 2) == root / "videos" / "video_00000-01000" / "video_00002.mp4"
    raw = json.loads(annotation_path(root, 2).read_text())
    assert set(raw) == {"scene_index", "video_filename", "object_property", "motion_trajectory", "collision"}
    assert raw["video_filename"] == "video_00002.mp4" and raw["scene_index"] == 2
    first = raw["motion_trajectory"][0]["objects"][0]
    assert set(first) == {
        "object_id",
        "location",
        "orientation",
        "velocity",
        "angular_velocity",
        "inside_camera_view",
    }
    for c in raw["collision"]:
        assert set(c) == {"object_ids", "frame_id", "location"}
    questions = read_questions(root / "questions.json")
    assert sorted(questions) == [0, 1, 2]
    entries = json.loads((root / "questions.json").read_text())
    assert [e["video_filename"] for e in entries] == [f"video_{i:05d}.mp4" for i in range(3)]
    frames, total = read_video(video_path(root, 0))
    assert total == 16 and frames.shape == (16, 64, 64, 3)
    assert read_annotation(annotation_path(root, 0)).num_frames == 16


def test_a_finished_dataset_is_left_alone_and_another_config_is_refused(dataset):
    root, _ = dataset
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    generate_dataset(CONFIG, root, num_videos=3, seed=SEED, progress=False)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before
    with pytest.raises(InputError, match="another config or seed"):
        generate_dataset(CONFIG, root, num_videos=3, seed=SEED + 1, progress=False)
    with pytest.raises(InputError, match="not empty"):
        generate_dataset(CONFIG, root / "videos", num_videos=1, seed=SEED, progress=False)


def test_workers_and_resuming_give_the_same_dataset(tmp_path, dataset):
    root, _ = dataset
    generate_dataset(CONFIG, tmp_path / "two", num_videos=3, seed=SEED, workers=2, progress=False)
    # resume: a killed run left one video without its annotation and no question file
    partial = tmp_path / "partial"
    generate_dataset(CONFIG, partial, num_videos=3, seed=SEED, progress=False)
    (partial / "questions.json").unlink()
    annotation_path(partial, 1).unlink()
    kept = video_path(partial, 0).stat().st_mtime_ns
    generate_dataset(CONFIG, partial, num_videos=3, seed=SEED, progress=False)
    assert video_path(partial, 0).stat().st_mtime_ns == kept  # not rendered again
    for other in (tmp_path / "two", partial):
        assert (other / "questions.json").read_text() == (root / "questions.json").read_text()
        for i in range(3):
            assert annotation_path(other, i).read_text() == annotation_path(root, i).read_text()
            np.testing.assert_array_equal(
                read_masks(mask_path(other, i))["ids"], read_masks(mask_path(root, i))["ids"]
            )
