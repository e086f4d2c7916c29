"""Uploaded files decoded into arrays (attnlab.data.uploads), checked against what wrote them."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from attnlab.data.uploads import (
    MAX_UPLOAD_BYTES,
    clip_frames,
    read_picture,
    read_point_cloud,
    read_signal,
    read_video,
)
from attnlab.errors import InputError

TS = """@problemName Tiny
@timeStamps false
@univariate false
@dimensions 2
@classLabel true a b
@data
1,2:3,4:a
5,6:7,8:b
"""


def gif(frames: np.ndarray) -> bytes:
    """Flat-coloured frames as an animated GIF (a palette holds them exactly)."""
    pictures = [Image.fromarray(f) for f in frames]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=100, loop=0)
    return buffer.getvalue()


def test_a_gif_video_is_its_frames():
    frames = np.zeros((5, 12, 16, 3), dtype=np.uint8)
    for t in range(5):
        frames[t, :, : 3 * (t + 1)] = (40 * t, 200, 255 - 40 * t)  # a bar that grows, frame by frame
    got = read_video(gif(frames), "clip.gif")
    assert got.shape == (5, 12, 16, 3) and got.dtype == np.uint8
    assert np.abs(got.astype(int) - frames).max() <= 2  # GIF's palette


def test_an_mp4_video_round_trips_through_pyav():
    import imageio.v3 as iio

    frames = np.full((4, 32, 32, 3), 128, dtype=np.uint8)
    frames[:, 8:24, 8:24] = (250, 30, 30)
    data = iio.imwrite("<bytes>", frames, extension=".mp4", plugin="pyav", codec="libx264")
    got = read_video(data, "clip.MP4")
    assert got.shape == (4, 32, 32, 3)
    assert np.abs(got[:, 16, 16].astype(int) - (250, 30, 30)).max() < 20  # lossy, but the square is red


def test_clip_frames_spreads_and_resizes_by_area():
    frames = np.zeros((7, 4, 4, 3), dtype=np.uint8)
    for t in range(7):
        frames[t] = 10 * t
    frames[6, :2, :2] = 255  # one quarter bright: the area mean of a 2x2 resize's top-left pixel
    clip = clip_frames(frames, 3, 2)  # frames 0, 3, 6
    assert clip.shape == (3, 3, 2, 2)
    assert clip[:2, 0, 0, 0].tolist() == pytest.approx([0.0, 30 / 255])
    assert float(clip[2, 0, 0, 0]) == pytest.approx(1.0) and float(clip[2, 0, 1, 1]) == pytest.approx(
        60 / 255
    )
    grey = clip_frames(frames, 3, 2, grey=True)
    assert grey.shape == (3, 1, 2, 2)
    with pytest.raises(InputError, match="the video has 7 frames; this run's clips have 8"):
        clip_frames(frames, 8, 2)


def test_a_ts_file_gives_its_first_series():
    got = read_signal(TS.encode(), "tiny.ts")
    assert got.tolist() == [[1.0, 2.0], [3.0, 4.0]]  # (C, L): channels are ':'-separated
    with pytest.raises(InputError, match=r"^tiny.ts:7: 1 channels, the header says 2$"):
        read_signal(
            TS.replace("1,2:3,4:a", "1,2:a").encode(), "tiny.ts"
        )  # the file's name, not a temporary's


def test_a_csv_is_a_row_per_step_and_a_column_per_channel():
    got = read_signal(b"ax,ay\n1,10\n2,20\n3,30\n", "walk.csv")
    assert got.shape == (2, 3) and got.tolist() == [[1, 2, 3], [10, 20, 30]]
    with pytest.raises(InputError, match="CSV row 2: expected 2 numbers"):
        read_signal(b"1,10\n2\n", "bad.csv")
    with pytest.raises(InputError, match="NaN"):
        read_signal(b"1,nan\n2,3\n", "gap.csv")


def test_point_clouds_from_kitti_bin_and_ply():
    from plyfile import PlyData, PlyElement

    points = np.array([[1.5, -2.0, 0.25, 0.5], [10.0, 3.0, -1.0, 0.9]], dtype=np.float32)
    assert read_point_cloud(points.astype("<f4").tobytes(), "000001.bin").tolist() == points.tolist()
    vertex = np.array(
        [tuple(p) for p in points], dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("intensity", "f4")]
    )
    buffer = io.BytesIO()
    PlyData([PlyElement.describe(vertex, "vertex")], text=False).write(buffer)
    assert read_point_cloud(buffer.getvalue(), "scan.ply").tolist() == points.tolist()
    xy_only = np.array([(1.0, 2.0)], dtype=[("x", "f4"), ("y", "f4")])
    buffer = io.BytesIO()
    PlyData([PlyElement.describe(xy_only, "vertex")], text=True).write(buffer)
    with pytest.raises(InputError, match="have no x, y, z"):
        read_point_cloud(buffer.getvalue(), "flat.ply")
    with pytest.raises(InputError, match="not a multiple of 16"):
        read_point_cloud(b"\0" * 20, "cut.bin")


@pytest.mark.parametrize(
    ("read", "data", "name", "message"),
    [
        (read_video, b"\0" * 100, "clip.exe", "unsupported video file 'clip.exe'"),
        (read_video, b"not a video at all", "clip.mp4", "cannot decode the video"),
        (read_signal, b"1,2", "signal.json", "unsupported signal file"),
        (read_point_cloud, b"ply\nnonsense", "scan.ply", "cannot read the .ply file"),
        (read_video, b"", "clip.mp4", "the upload is empty"),
        (read_signal, b"0" * (MAX_UPLOAD_BYTES + 1), "big.csv", "at most 5 MiB"),
    ],
)
def test_bad_files_are_one_line(read, data: bytes, name: str, message: str):
    with pytest.raises(InputError, match=message):
        read(data, name)


def test_pictures_keep_their_checks():
    buffer = io.BytesIO()
    Image.new("RGB", (3, 2), (1, 2, 3)).save(buffer, format="PNG")
    assert read_picture(buffer.getvalue()).shape == (2, 3, 3)
    with pytest.raises(InputError, match="not a PNG, JPEG"):
        read_picture(b"#!/bin/sh\n")
    assert torch.is_tensor(clip_frames(np.zeros((1, 2, 2, 3), np.uint8), 1, 1))
