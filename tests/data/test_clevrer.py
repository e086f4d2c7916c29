import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from attnlab.data.clevrer import (
    COLORS,
    SHAPES,
    ClevrerVideos,
    frame_indices,
    read_annotation,
    read_video,
)
from attnlab.errors import ConfigError, InputError

T, H, W = 16, 32, 48
RIGHT = {0: (200, 60, 30), 1: (40, 180, 60)}  # the right half's colour identifies the scene
CODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"


def level(t: int) -> int:
    """The grey level of frame t's left half: identifies the frame after decoding."""
    return 20 + 12 * t


def write_video(path: Path, scene: int, num_frames: int = T) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(CODEC, rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for t in range(num_frames):
            frame = np.zeros((H, W, 3), np.uint8)
            frame[:, : W // 2] = level(t)
            frame[:, W // 2 :] = RIGHT[scene]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def location(t: int, k: int) -> list[float]:
    return [0.1 * t - k, 0.5 * k, 0.2]


def annotation(scene: int, num_frames: int = T) -> dict:
    objects = [
        {"object_id": 0, "color": "red", "material": "metal", "shape": "cube"},
        {"object_id": 1, "color": "cyan", "material": "rubber", "shape": "cylinder"},
    ]
    trajectory = [
        {
            "frame_id": t,
            "objects": [
                {"object_id": k, "location": location(t, k), "inside_camera_view": t < 12 or k == 0}
                for k in range(2)
            ],
        }
        for t in range(num_frames)
    ]
    return {
        "scene_index": scene,
        "video_filename": f"video_{scene:05d}.mp4",
        "object_property": objects,
        "motion_trajectory": trajectory,
        "collision": [{"object_ids": [0, 1], "frame_id": 7, "location": [0.0, 0.1, 0.2]}],
    }


def write_annotation(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.fixture
def clevrer(tmp_path) -> Path:
    """Two scenes in CLEVRER's folder layout, with a question file."""
    for scene in (0, 1):
        write_video(tmp_path / "video_train" / "video_00000-01000" / f"video_{scene:05d}.mp4", scene)
        ann = tmp_path / "annotation_train" / "annotation_00000-01000" / f"annotation_{scene:05d}.json"
        write_annotation(ann, annotation(scene))
    questions = [
        {
            "scene_index": 1,
            "video_filename": "video_00001.mp4",
            "questions": [{"question_id": 0, "answer": "2"}],
        }
    ]
    (tmp_path / "train.json").write_text(json.dumps(questions))
    return tmp_path


def dataset(root: Path, **options) -> ClevrerVideos:
    return ClevrerVideos(
        root / "video_train",
        annotation_dir=root / "annotation_train",
        question_file=root / "train.json",
        **options,
    )


def left_levels(video: torch.Tensor) -> list[float]:
    """Mean of the left half's interior per frame, back in 0-255."""
    h, w = video.shape[-2:]
    return (video[:, :, 2 : h - 2, 2 : w // 2 - 2].mean(dim=(1, 2, 3)) * 255).tolist()


def test_reads_every_frame_at_full_size(clevrer):
    frames, total = read_video(clevrer / "video_train" / "video_00000-01000" / "video_00000.mp4")
    assert total == T and frames.shape == (T, H, W, 3) and frames.dtype == np.uint8
    assert np.allclose(
        frames[:, 4:-4, 4 : W // 2 - 4].mean(axis=(1, 2, 3)), [level(t) for t in range(T)], atol=4
    )
    assert np.allclose(frames[:, 4:-4, W // 2 + 4 : -4].mean(axis=(1, 2)), RIGHT[0], atol=6)


def test_sub_samples_and_resizes(clevrer):
    data = dataset(clevrer, start=1, stride=3, num_frames=4, size=(16, 24))
    sample = data[0]
    assert sample["frame_indices"].tolist() == [1, 4, 7, 10]
    assert sample["video"].shape == (4, 3, 16, 24) and sample["video"].dtype == torch.float32
    assert np.allclose(left_levels(sample["video"]), [level(t) for t in (1, 4, 7, 10)], atol=4)
    right = sample["video"][:, :, 3:-3, 15:-3].mean(dim=(0, 2, 3)) * 255  # width halves kept apart
    assert np.allclose(right.tolist(), RIGHT[0], atol=6)


def test_stride_without_a_count_takes_every_nth_frame_to_the_end(clevrer):
    sample = dataset(clevrer, stride=5, size=None)[1]
    assert sample["frame_indices"].tolist() == [0, 5, 10, 15]
    assert sample["video"].shape == (4, 3, H, W)
    assert np.allclose(left_levels(sample["video"]), [level(t) for t in (0, 5, 10, 15)], atol=4)
    assert int(sample["scene_index"]) == 1


def test_annotations_questions_and_padding(clevrer):
    data = dataset(clevrer, start=2, stride=5, num_frames=3, max_objects=4)
    sample = data[0]
    picked = [2, 7, 12]
    assert sample["object_mask"].tolist() == [True, True, False, False]
    expected = [
        [COLORS.index("red"), 0, SHAPES.index("cube")],
        [COLORS.index("cyan"), 1, SHAPES.index("cylinder")],
    ]
    assert sample["properties"].tolist() == [*expected, [-1, -1, -1], [-1, -1, -1]]
    assert torch.allclose(
        sample["locations"][:, :2], torch.tensor([[location(t, k) for k in range(2)] for t in picked])
    )
    assert (sample["locations"][:, 2:] == 0).all()
    assert sample["in_view"].tolist() == [[True, True, False, False]] * 2 + [[True, False, False, False]]
    ann = data.annotation(0)
    assert ann.num_frames == T and ann.collisions[0].objects == (0, 1) and ann.collisions[0].frame == 7
    assert data.questions(1) == [{"question_id": 0, "answer": "2"}] and data.questions(0) == []
    batch = torch.utils.data.default_collate([data[0], data[1]])
    assert batch["video"].shape == (2, 3, 3, 64, 64)


def expect_one_line_error(call, *names: str) -> None:
    with pytest.raises(InputError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message
    assert all(name in message for name in names), message


def video_path(root: Path, scene: int = 0) -> Path:
    return root / "video_train" / "video_00000-01000" / f"video_{scene:05d}.mp4"


def annotation_path(root: Path, scene: int = 0) -> Path:
    return root / "annotation_train" / "annotation_00000-01000" / f"annotation_{scene:05d}.json"


def test_an_annotation_without_its_video_is_an_error(clevrer):
    video_path(clevrer, 1).unlink()
    expect_one_line_error(lambda: dataset(clevrer), "annotation_00001.json", "video_00001.mp4")


def test_a_video_removed_after_indexing_is_an_error(clevrer):
    data = dataset(clevrer)
    video_path(clevrer).unlink()
    expect_one_line_error(lambda: data[0], "not found", "video_00000.mp4")


def test_an_empty_video_is_an_error(clevrer):
    video_path(clevrer).write_bytes(b"")
    expect_one_line_error(lambda: dataset(clevrer)[0], "empty", "video_00000.mp4")


def test_a_corrupt_video_is_an_error(clevrer):
    video_path(clevrer).write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    expect_one_line_error(lambda: dataset(clevrer)[0], "corrupt", "video_00000.mp4")


def test_an_annotation_of_another_length_is_an_error(clevrer):
    write_annotation(annotation_path(clevrer), annotation(0, num_frames=T - 1))
    expect_one_line_error(lambda: dataset(clevrer)[0], "15 frames", "has 16", "video_00000.mp4")


def test_an_annotation_naming_another_video_is_an_error(clevrer):
    write_annotation(annotation_path(clevrer), annotation(0) | {"video_filename": "video_00009.mp4"})
    expect_one_line_error(lambda: dataset(clevrer)[0], "video_00009.mp4")


def test_unreadable_or_malformed_json_is_an_error(clevrer):
    text = annotation_path(clevrer).read_text()
    annotation_path(clevrer).write_text(text[: len(text) // 2])
    expect_one_line_error(lambda: dataset(clevrer)[0], "not readable JSON", "annotation_00000.json")
    bad = annotation(0)
    bad["object_property"][1]["color"] = "magenta"
    write_annotation(annotation_path(clevrer), bad)
    expect_one_line_error(lambda: read_annotation(annotation_path(clevrer)), "magenta")
    bad = annotation(0)
    bad["motion_trajectory"][3]["objects"][0]["location"] = "here"
    write_annotation(annotation_path(clevrer), bad)
    expect_one_line_error(lambda: read_annotation(annotation_path(clevrer)), "malformed")
    (clevrer / "train.json").write_text("[{")
    expect_one_line_error(lambda: dataset(clevrer), "train.json")


def test_too_few_frames_for_the_requested_clip_is_an_error(clevrer):
    expect_one_line_error(lambda: dataset(clevrer, stride=2, num_frames=9)[0], "16 frames", "9 needed")
    assert frame_indices(16, start=3, stride=4, num_frames=3) == [3, 7, 11]


def test_bad_options_and_empty_folders(clevrer, tmp_path):
    with pytest.raises(ConfigError):
        dataset(clevrer, stride=0)
    (tmp_path / "empty").mkdir()
    expect_one_line_error(lambda: ClevrerVideos(tmp_path / "empty"), "no video_XXXXX.mp4")
    expect_one_line_error(lambda: ClevrerVideos(tmp_path / "absent"), "not found")
    without = ClevrerVideos(clevrer / "video_train", size=(8, 8), num_frames=2)
    assert set(without[0]) == {"video", "frame_indices", "scene_index"}
