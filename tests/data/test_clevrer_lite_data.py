"""The clevrer-lite datamodule: generated on first use, split by scene ranges, sprite-style items."""

import contextlib
import io
import json
import multiprocessing
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from attnlab.data._registry import DATAMODULES
from attnlab.data.clevrer import read_annotation
from attnlab.data.clevrer_lite import generate_video, mask_path, read_masks, video_path
from attnlab.data.clevrer_lite.writer import write_video
from attnlab.data.clevrer_lite_data import (
    ClevrerLiteData,
    ensure_generated,
    generated_root,
    generator_config,
)
from attnlab.errors import ConfigError, InputError

SIZES = dict(train_size=4, val_size=2, test_size=2)


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: threads only add overhead


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("clevrer_lite_cache")


@pytest.fixture(scope="module")
def data(cache_dir):
    return ClevrerLiteData(seed=0, cache_dir=str(cache_dir), workers=1, **SIZES)


def test_registered():
    assert DATAMODULES.get("clevrer-lite").cls is ClevrerLiteData


def test_items_are_shaped_like_the_sprite_datamodules(data):
    item = data.dataset("train")[1]
    assert set(item) == {"video", "segmentation", "masks", "ids", "num_objects", "scene_index"}
    t, k, s = 10, 6, 64
    assert item["video"].shape == (t, 3, s, s) and item["video"].dtype == torch.float32
    assert item["video"].min() >= 0 and item["video"].max() <= 1
    assert item["segmentation"].shape == (t, s, s) and item["segmentation"].dtype == torch.int64
    assert item["masks"].shape == (t, 1 + k, s, s) and item["masks"].dtype == torch.bool
    assert torch.equal(item["masks"].float().argmax(1), item["segmentation"])  # one-hot of it
    assert torch.equal(item["masks"].sum(1), torch.ones(t, s, s, dtype=torch.long))
    n = int(item["num_objects"])
    assert item["ids"].tolist() == [i + 1 if i < n else 0 for i in range(k)]
    # the segmentation is the generator's id map at frames 0, 3, ..., 27 (k + 1 = object_id k)
    root = data.source.folder.root
    ids = read_masks(mask_path(root, 1))["ids"]
    np.testing.assert_array_equal(item["segmentation"].numpy(), ids[0:30:3])
    frames = generate_video(generator_config(64, 6), 0, 1).frames[0:30:3]  # (T, H, W, 3)
    video = item["video"].permute(0, 2, 3, 1).numpy() * 255
    assert np.abs(video - frames).mean() < 4  # H.264: close, not exact
    assert n == len(
        read_annotation(root / "annotations" / "annotation_00000-01000" / "annotation_00001.json").objects
    )


def test_splits_are_scene_index_ranges(data):
    scenes = {
        split: [int(x["scene_index"]) for x in data.dataset(split)] for split in ("train", "val", "test")
    }
    assert scenes == {"train": [0, 1, 2, 3], "val": [4, 5], "test": [6, 7]}


def test_a_batch_collates_for_the_object_centric_task(data):
    batch = next(iter(torch.utils.data.DataLoader(data.dataset("val"), batch_size=2)))
    assert batch["video"].shape == (2, 10, 3, 64, 64) and batch["masks"].shape == (2, 10, 7, 64, 64)


def test_the_generated_folder_is_reused_and_extended(data, cache_dir):
    root = generated_root(generator_config(64, 6), 0, cache_dir)
    assert data.source.folder.root == root
    stamp = (root / "config.json").stat().st_mtime_ns
    smaller = ClevrerLiteData(seed=0, cache_dir=str(cache_dir), train_size=2, val_size=1, test_size=1)
    assert len(smaller.dataset("train")) == 2
    assert (root / "config.json").stat().st_mtime_ns == stamp  # nothing regenerated
    other_seed = ClevrerLiteData(seed=0, dataset_seed=1, cache_dir=str(cache_dir), **SIZES)
    assert generated_root(other_seed.source.config, 1, cache_dir) != root


def _generate_and_report(cache_dir, barrier, queue):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        barrier.wait()
        root = ensure_generated(generator_config(64, 6), 0, 2, cache_dir, workers=1)
    queue.put((str(root), out.getvalue()))


def test_runs_started_side_by_side_generate_the_folder_once(tmp_path):
    context = multiprocessing.get_context("fork")
    barrier, queue = context.Barrier(2), context.Queue()
    runs = [context.Process(target=_generate_and_report, args=(tmp_path, barrier, queue)) for _ in range(2)]
    for run in runs:
        run.start()
    reports = [queue.get(timeout=120) for _ in runs]
    for run in runs:
        run.join(timeout=10)
    assert [run.exitcode for run in runs] == [0, 0]
    (root, _), (other, _) = reports
    assert root == other
    said = "".join(text for _, text in reports)
    assert said.count("generating 2 CLEVRER-lite videos") == 1, said  # the other waited, then read it
    config = json.loads((Path(root) / "config.json").read_text())
    assert config["num_videos"] == 2 and config["finished"]


def test_a_cache_that_cannot_be_written_is_a_one_line_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="cannot write to the CLEVRER-lite cache"):
        ensure_generated(generator_config(64, 6), 0, 2, tmp_path / "file" / "cache", workers=1)


def test_root_reads_an_existing_folder_and_too_short_videos_fail_or_are_skipped(data, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(data.source.folder.root, root, ignore=shutil.ignore_patterns(".attnlab-cache"))
    short = generate_video(generator_config(64, 6), 0, 2).frames[:12]
    write_video(video_path(root, 2), short, fps=8)
    with pytest.raises(InputError, match=r"video_00002.mp4 has 12 frames, 28 needed"):
        ClevrerLiteData(seed=0, root=str(root), **SIZES).dataset("train")
    tolerant = ClevrerLiteData(seed=0, root=str(root), skip_broken=True, **SIZES)
    train = tolerant.dataset("train")
    assert [int(x["scene_index"]) for x in train] == [0, 1, 3] and train.skipped == 1
    assert len(tolerant.dataset("val")) == 2


def test_a_range_without_videos_and_bad_sizes_are_one_line_errors(data, tmp_path):
    root = data.source.folder.root
    with pytest.raises(InputError, match=r"no video in scene range \[8, 10\) of the test split"):
        ClevrerLiteData(seed=0, root=str(root), train_size=6, val_size=2, test_size=2).dataset("test")
    with pytest.raises(ConfigError, match="train_size"):
        ClevrerLiteData(seed=0, root=str(root), train_size=0)
    with pytest.raises(InputError, match="CLEVRER folder not found"):
        ClevrerLiteData(seed=0, root=str(tmp_path / "nowhere")).dataset("train")
    config = json.loads((root / "config.json").read_text())
    assert config["num_videos"] == 8 and config["finished"]


def test_clip_size_resizes_the_clips_of_the_videos_rendered_at_image_size(data, cache_dir):
    small = ClevrerLiteData(seed=0, cache_dir=str(cache_dir), workers=1, clip_size=32, **SIZES)
    assert small.source.folder.root == data.source.folder.root  # the same 64-pixel videos
    big, item = data.dataset("train")[1], small.dataset("train")[1]
    assert item["video"].shape == (10, 3, 32, 32) and item["masks"].shape == (10, 7, 32, 32)
    # frames: the mean of each 2x2 block of the 64-pixel clip (FFmpeg's area filter works on the
    # decoded YUV 4:2:0, so 2.1 grey levels off on average here; one pixel of each block, nearest
    # neighbour, is 3.4 off); segmentation: the id at one pixel of the block
    pooled = torch.nn.functional.avg_pool2d(big["video"], 2)
    assert (item["video"] - pooled).abs().mean() < 2.6 / 255
    assert torch.equal(item["segmentation"], big["segmentation"][:, 1::2, 1::2])
    with pytest.raises(ConfigError, match="clip_size"):
        ClevrerLiteData(seed=0, cache_dir=str(cache_dir), clip_size=4, **SIZES)
