"""The video-folder datamodule on mp4 files the tests write with PyAV: which frames a clip holds
(each written frame has its own grey level), the short-side resize and crops, the CSV format,
and one-line errors for every kind of bad input (or skipping them with ``skip_broken``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import cast

import av
import numpy as np
import pytest
import torch

from attnlab.data.video_folder import MEAN, STD, VideoFolderData, read_video_list
from attnlab.errors import ConfigError, InputError

LEVELS = 8  # frame k of a written video has grey level 16 + 24 * (k % LEVELS)


def write_mp4(path: Path, num_frames: int, height: int = 32, width: int = 48) -> None:
    """A tiny H.264 (or MPEG-4) video whose frame k is flat grey 16 + 24 * (k % 8), with a white
    4-pixel column at the left edge (to tell crops apart)."""
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w", format="mp4") as container:
        stream = cast(av.VideoStream, container.add_stream(codec, rate=8))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "0", "preset": "ultrafast"}
        for k in range(num_frames):
            frame = np.full((height, width, 3), 16 + 24 * (k % LEVELS), np.uint8)
            frame[:, :4] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def grey_levels(clip: torch.Tensor) -> list[int]:
    """The written frame index (mod 8) of every frame of a normalised clip (3, T, S, S), from its
    centre pixel."""
    s = clip.shape[-1] // 2
    pixel = clip[0, :, s, s] * STD[0] + MEAN[0]  # (T,) red channel back in [0, 1]
    return [round((float(v) * 255 - 16) / 24) for v in pixel]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for i in range(6):
        write_mp4(tmp_path / f"v{i}.mp4", num_frames=20)
    (tmp_path / "train.csv").write_text("".join(f"v{i}.mp4 {i % 3}\n" for i in range(4)))
    (tmp_path / "test.csv").write_text(f"{tmp_path / 'v4.mp4'},1\n\nv5.mp4, 2\n")  # absolute; commas
    return tmp_path


def data(folder: Path, **args: object) -> VideoFolderData:
    settings: dict[str, object] = {
        "seed": 0, "train_csv": str(folder / "train.csv"), "test_csv": str(folder / "test.csv"),
        "val_fraction": 0.25, "frames_per_clip": 4, "frame_step": 2, "size": 16, "eval_batch_size": 2,
    } | args  # fmt: skip
    return VideoFolderData(**settings)  # type: ignore[arg-type]


def test_csv_lines_paths_and_labels(folder: Path):
    (folder / "odd name.csv").write_text("sub dir/a b.mp4 7\n/abs/x.mp4,0\n  c.mp4\t3  \n")
    videos = read_video_list(folder / "odd name.csv")
    assert [(v.path, v.label) for v in videos] == [
        (folder / "sub dir/a b.mp4", 7), (Path("/abs/x.mp4"), 0), (folder / "c.mp4", 3),
    ]  # fmt: skip


def test_splits_and_label_names(folder: Path):
    dm = data(folder)
    assert len(dm.lists["train"]) == 3 and len(dm.lists["val"]) == 1  # 0.25 of 4 cut off
    assert {v.path.name for v in dm.lists["train"] + dm.lists["val"]} == {f"v{i}.mp4" for i in range(4)}
    assert [v.label for v in dm.lists["test"]] == [1, 2]
    assert dm.label_names == {"label": ("0", "1", "2")}
    named = data(folder, class_names=["a", "b", "c", "d"])
    assert named.label_names == {"label": ("a", "b", "c", "d")}
    with pytest.raises(InputError, match=r"label 2, but data.class_names names only 2"):
        data(folder, class_names=["a", "b"])


def test_evaluation_clip_frames_resize_and_label(folder: Path):
    sample = data(folder).dataset("test")[0]
    assert sample["input"].shape == (3, 4, 16, 16) and "views" not in sample
    assert int(sample["label"]) == 1
    assert grey_levels(sample["input"]) == [0, 2, 4, 6]  # frames 0, 2, 4, 6 (one clip from the start)
    # 32 x 48 -> 16 x 24 (short side 16); the centre crop (columns 4..19) misses the white edge
    assert float(sample["input"][0, 0, :, 0].mean() * STD[0] + MEAN[0]) < 0.2


def test_clips_and_views(folder: Path):
    sample = data(folder, num_clips=2, num_views=3).dataset("test")[0]
    views = sample["views"]
    assert views.shape == (6, 3, 4, 16, 16) and torch.equal(sample["input"], views[1])  # the centre
    # 20 frames in 2 segments: clips start at frames 0 and 10 (grey index 10 % 8 = 2)
    assert [grey_levels(v) for v in views[::3]] == [[0, 2, 4, 6], [2, 4, 6, 0]]
    left_edge = [float(v[0, 0, :, 0].mean() * STD[0] + MEAN[0]) for v in views[:3]]
    assert left_edge[0] > 0.9 and left_edge[1] < 0.2 and left_edge[2] < 0.2  # only the left crop
    # the centre crop of each clip, for probes that attend across segments
    assert sample["segments"].shape == (2, 3, 4, 16, 16)
    assert torch.equal(sample["segments"], views[1::3])
    assert "segments" not in data(folder, num_views=3).dataset("test")[0]  # one clip: no segments


def test_training_clips_start_at_seeded_random_frames(folder: Path):
    train = data(folder, frame_step=1).dataset("train")
    again = data(folder, frame_step=1).dataset("train")
    other = data(folder, frame_step=1, seed=1).dataset("train")
    assert all(torch.equal(train[i]["input"], again[i]["input"]) for i in range(len(train)))
    levels = grey_levels(train[0]["input"])
    assert levels == [(levels[0] + k) % LEVELS for k in range(4)]  # consecutive frames
    starts = [grey_levels(d[i]["input"])[0] for d in (train, other) for i in range(len(d))]
    assert len(set(starts)) > 1  # not always frame 0, as evaluation clips are
    assert "views" not in data(folder, num_views=3).dataset("train")[0]


def test_loader_batches_for_the_task(folder: Path):
    dm = data(folder, num_views=2)
    batch = next(iter(dm.probe_dataloader()))
    assert batch["input"].shape == (2, 3, 4, 16, 16) and batch["views"].shape == (2, 2, 3, 4, 16, 16)
    assert batch["label"].dtype == torch.int64


def test_bad_inputs_are_one_line_errors(folder: Path):
    with pytest.raises(InputError, match=r"video list not found: .*nosuch.csv"):
        data(folder, train_csv=str(folder / "nosuch.csv"))
    (folder / "bad.csv").write_text("v0.mp4 1\nv1.mp4 one\n")
    with pytest.raises(InputError, match=r"bad.csv line 2: expected 'path label'.*'v1.mp4 one'"):
        data(folder, train_csv=str(folder / "bad.csv"))
    (folder / "neg.csv").write_text("v0.mp4 -1\n")
    with pytest.raises(InputError, match=r"neg.csv line 1"):
        data(folder, train_csv=str(folder / "neg.csv"))
    (folder / "empty.csv").write_text("\n\n")
    with pytest.raises(InputError, match="lists no videos"):
        data(folder, train_csv=str(folder / "empty.csv"))
    with pytest.raises(ConfigError, match=r"data.frames_per_clip"):
        data(folder, frame_step=0)
    with pytest.raises(ConfigError, match=r"data.val_csv is not given"):
        data(folder, val_fraction=0.0)


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ("missing.mp4 0", "video not found: .*missing.mp4"),
        ("corrupt.mp4 0", "video .*corrupt.mp4 is corrupt or not a video"),
        ("truncated.mp4 0", "video .*truncated.mp4 is corrupt or not a video"),
        ("short.mp4 0", r"short.mp4 has 5 frames, fewer than one clip needs \(7: data.frames_per_clip=4"),
    ],
)
def test_broken_videos_fail_or_are_skipped(folder: Path, line: str, expect: str, caplog):
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    whole = (folder / "v0.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    write_mp4(folder / "short.mp4", num_frames=5)
    (folder / "test.csv").write_text(f"v4.mp4 1\n{line}\nv5.mp4 2\n")
    with pytest.raises(InputError, match=expect + ".*set data.skip_broken true"):
        data(folder).dataset("test")
    dm = data(folder, skip_broken=True)
    with caplog.at_level(logging.WARNING, logger="attnlab.data.video_folder"):
        test = dm.dataset("test")
        dm.test_dataloader()
    assert len(test) == 2 and dm.skipped("test") == 1
    assert [int(test[i]["label"]) for i in range(2)] == [1, 2]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "skipped 1 of 3 videos" in warnings[0]  # logged once


def test_all_broken_is_an_error(folder: Path):
    (folder / "test.csv").write_text("missing.mp4 0\n")
    with pytest.raises(InputError, match="none of the 1 videos is usable"):
        data(folder, skip_broken=True).dataset("test")
