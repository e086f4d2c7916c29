"""sprite-clips: labels of hand-made sprite tracks (which sprite is largest, hue bins of known
colours), samples against the generator's own frames, and the vjepa task on them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from attnlab.cli import main
from attnlab.data.sprite_clips import HUES, SpriteClipsData, clip_labels, hue_bin
from attnlab.data.sprites import SHAPES, Clip, SpriteTracks, generate_clip, render
from attnlab.errors import ConfigError


def hand_clip(radii: list[float], shapes: list[str], colours: list[tuple[int, int, int]]) -> Clip:
    """Two frames of 64 x 64 with the sprites at fixed, separate places."""
    k, t = len(radii), 2
    tracks = SpriteTracks(
        shapes=np.array([SHAPES.index(s) for s in shapes], np.int8),
        aspect=np.ones(k, np.float32),
        depth=np.arange(k, dtype=np.int8),
        centers=np.tile(
            np.array([[16.0 + 32 * (i % 2), 16.0 + 32 * (i // 2)] for i in range(k)], np.float32), (t, 1, 1)
        ),
        radii=np.tile(np.array(radii, np.float32), (t, 1)),
        angles=np.zeros((t, k), np.float32),
        colours=np.tile(np.array(colours, np.uint8), (t, 1, 1)),
    )
    frames, ids = render(tracks, 64)
    return Clip(frames, ids, tracks)


def test_labels_of_hand_made_clips():
    # a square of circumradius 14 covers about 2 * 14^2 = 392 pixels, a disc of radius 9 about
    # pi * 81 = 254, a triangle of circumradius 5 about 1.3 * 25 = 32
    clip = hand_clip(
        [9.0, 14.0, 5.0], ["disc", "square", "triangle"], [(255, 0, 0), (0, 0, 255), (0, 255, 0)]
    )
    assert clip_labels(clip) == {
        "num_objects": 3,
        "shape": SHAPES.index("square"),
        "colour": HUES.index("blue"),
    }
    # a disc of radius 11 (about 380 pixels) beats a square of circumradius 12 (2 * 144 = 288;
    # sampled at pixel centres, 16 x 16 = 256)
    clip = hand_clip([11.0, 12.0], ["disc", "square"], [(255, 255, 0), (0, 0, 255)])
    assert clip_labels(clip) == {
        "num_objects": 2,
        "shape": SHAPES.index("disc"),
        "colour": HUES.index("yellow"),
    }


@pytest.mark.parametrize(
    ("rgb", "name"),
    [((255, 0, 0), "red"), ((250, 10, 40), "red"), ((255, 255, 0), "yellow"), ((0, 200, 0), "green"),
     ((0, 255, 255), "cyan"), ((20, 20, 255), "blue"), ((255, 0, 255), "magenta"), ((255, 120, 0), "red")],
)  # fmt: skip
def test_hue_bins(rgb: tuple[int, int, int], name: str):
    # (255, 120, 0) has hue 28 degrees: nearer red (0) than yellow (60)
    assert HUES[hue_bin(np.array(rgb, np.uint8))] == name


def test_samples_are_the_generators_clips():
    data = SpriteClipsData(seed=3, image_size=32, num_frames=4, val_size=2, test_size=3, probe_size=2)
    test = data.dataset("test")
    assert len(test) == 3 and data.label_names["shape"] == SHAPES
    assert data.label_names["num_objects"] == ("0", "1", "2", "3", "4")
    sample = test[1]
    clip = generate_clip(data.config, 3 + 2_000_029, 1)
    frames = torch.from_numpy(clip.frames).permute(3, 0, 1, 2).float() / 255  # (3, T, S, S)
    assert sample["input"].shape == (3, 4, 32, 32)
    torch.testing.assert_close(sample["input"] * 0.25 + 0.5, frames, rtol=0, atol=1e-6)
    assert int(sample["num_objects"]) == clip.tracks.num_objects
    batch = next(iter(data.probe_dataloader()))
    assert set(batch) == {"input", "num_objects", "shape", "colour"} and batch["input"].shape[0] == 2
    with pytest.raises(ConfigError, match="min_objects must be >= 1"):
        SpriteClipsData(seed=0, min_objects=0)


def test_vjepa_task_on_sprite_clips(tmp_path: Path):
    run = tmp_path / "run"
    args = ["run", "vjepa-moving_fmnist", "--run-dir", str(run), "--data.name", "sprite-clips"]
    args += ["--data.val_size", "4", "--data.test_size", "8", "--data.probe_size", "16"]
    args += ["--data.batch_size", "4", "--data.eval_batch_size", "8", "--task.probe.steps", "3"]
    args += ["--model.in_chans", "3", "--model.depth", "1", "--optim.warmup_steps", "1"]
    args += ["--trainer.max_steps", "2", "--trainer.val_every", "2", "--trainer.progress_bar", "false"]
    assert main(args) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    for label in ("num_objects", "shape", "colour"):
        assert 0.0 <= metrics[f"test/floor/attentive/{label}_acc"] <= 1.0
