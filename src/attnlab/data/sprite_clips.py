"""The object-centric family's sprite videos as labelled clips for V-JEPA: ``sprite-clips``.

The clips are :mod:`attnlab.data.sprites`' VMDS-style videos (the same generator, presets and
seeds as the ``vmds`` datamodule); what this module adds is one label per clip for frozen probes,
read from the generator's parameters of the clip:

* ``num_objects``: how many sprites the clip holds;
* ``shape``: the shape of the largest sprite (largest silhouette, averaged over the frames,
  whether or not others hide part of it);
* ``colour``: that sprite's hue in the first frame, in 6 bins centred on red, yellow, green,
  cyan, blue and magenta.

Samples: ``input`` (3, T, S, S) float32, the frames in [0, 1] mapped to (x - 0.5) / 0.25, and the
three labels () int64. Training clips are the endless procedural stream; validation, test and the
probes' clips are finite sets from disjoint seeds.
"""

from __future__ import annotations

import colorsys
import dataclasses

import numpy as np
import torch
from torch.utils.data import Dataset

from attnlab.data._registry import register_datamodule
from attnlab.data.datamodule import DataModule, Split
from attnlab.data.sprites import SHAPES, Clip, VideoSprites, VMDSVariant, amodal_masks, sprite_preset
from attnlab.errors import ConfigError

HUES = ("red", "yellow", "green", "cyan", "blue", "magenta")
MEAN, STD = 0.5, 0.25  # sprites on black in [0, 1] -> about zero mean, unit scale


def largest_sprite(clip: Clip) -> int:
    """Index of the sprite with the largest silhouette, averaged over frames (the first on ties)."""
    areas = amodal_masks(clip.tracks, clip.frames.shape[1]).sum(axis=(0, 2, 3))  # (K,)
    return int(np.argmax(areas))


def hue_bin(rgb: np.ndarray) -> int:
    """An RGB colour (3,) uint8 -> the nearest of the 6 hues in :data:`HUES`."""
    hue = colorsys.rgb_to_hsv(*(rgb.astype(np.float64) / 255.0))[0]  # in [0, 1)
    return int(np.floor(hue * 6 + 0.5)) % 6


def clip_labels(clip: Clip) -> dict[str, int]:
    k = largest_sprite(clip)
    return {
        "num_objects": clip.tracks.num_objects,
        "shape": int(clip.tracks.shapes[k]),
        "colour": hue_bin(clip.tracks.colours[0, k]),
    }


class LabelledSprites(Dataset[dict[str, torch.Tensor]]):
    """Sprite clips (3, T, S, S), normalised, with the labels of :func:`clip_labels`."""

    def __init__(self, sprites: VideoSprites) -> None:
        self.sprites = sprites
        self.procedural = sprites.procedural

    def __len__(self) -> int:
        return len(self.sprites)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clip = self.sprites.clip(index)
        frames = clip.frames.transpose(3, 0, 1, 2).astype(np.float32) / np.float32(255)  # (3, T, S, S)
        sample = {"input": torch.from_numpy((frames - MEAN) / STD)}
        return sample | {name: torch.tensor(value) for name, value in clip_labels(clip).items()}


@register_datamodule("sprite-clips")
class SpriteClipsData(DataModule):
    """VMDS-style sprite clips with clip labels: number of sprites, shape and hue of the largest."""

    def __init__(
        self,
        *,
        seed: int,
        variant: VMDSVariant = "standard",
        image_size: int = 48,
        num_frames: int = 8,
        min_objects: int = 1,
        max_objects: int = 4,
        val_size: int = 256,
        test_size: int = 1024,
        probe_size: int = 2048,
        batch_size: int = 32,
        eval_batch_size: int = 128,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
        if min_objects < 1:
            raise ConfigError(
                f"sprite-clips labels the largest sprite: data.min_objects must be >= 1, got {min_objects}"
            )
        if min(val_size, test_size, probe_size) < 1:
            raise ConfigError("data.val_size, test_size and probe_size must be >= 1")
        preset = sprite_preset("vmds" if variant == "standard" else f"vmds-{variant}")
        self.config = dataclasses.replace(
            preset,
            image_size=image_size,
            num_frames=num_frames,
            min_objects=min_objects,
            max_objects=max_objects,
        )
        self.label_names = {
            "num_objects": tuple(str(k) for k in range(max_objects + 1)),
            "shape": SHAPES,
            "colour": HUES,
        }
        self.sizes: dict[str, int | None] = {
            "train": None,
            "val": val_size,
            "test": test_size,
            "probe": probe_size,
        }

    def _part(self, part: str) -> LabelledSprites:
        offset = {"train": 0, "val": 1_000_003, "test": 2_000_029, "probe": 3_000_017}[part]  # disjoint
        return LabelledSprites(VideoSprites(self.config, seed=self.seed + offset, size=self.sizes[part]))

    def build(self, split: Split) -> LabelledSprites:
        return self._part(split)

    def probe_dataloader(self) -> torch.utils.data.DataLoader[object]:
        return self._loader(self._part("probe"), batch_size=self.eval_batch_size)
