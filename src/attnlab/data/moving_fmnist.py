"""Moving Fashion-MNIST: real Fashion-MNIST items moving over textured backgrounds, with an
appearance label (which item) and a motion label (which trajectory, in which time order).

It mirrors V-JEPA's frozen evaluation split (Bardes et al. 2024, arXiv:2404.08471): appearance
(Kinetics-like) can be read off any single frame; motion (Something-Something-like) cannot.
The 8 motions come in 4 pairs whose clips hold the very same frames in opposite order
(left->right / right->left, down / up, clockwise / counter-clockwise, speeding up / slowing down
along a diagonal): only the time order tells a pair apart. The background is a static random
texture (three sine gratings and pixel noise), so no single frame reveals the motion.

Items: ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``) through
:mod:`attnlab.data.fashion_mnist`; train clips use training items but the last ``val_items``,
validation clips those, test clips the t10k items. Clip ``i`` of a split is a pure function
of ``(seed, split, i)``; the training stream is procedural (no end, no repeats).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from attnlab.data._registry import register_datamodule
from attnlab.data.datamodule import DataModule, Split
from attnlab.data.fashion_mnist import CLASSES, DEFAULT_ROOT, load_idx_split
from attnlab.data.uploads import clip_frames
from attnlab.errors import ConfigError

MOTIONS = (
    "left to right",
    "right to left",
    "downwards",
    "upwards",
    "clockwise",
    "counter-clockwise",
    "speeding up (diagonal)",
    "slowing down (diagonal)",
)
ITEM = 28  # Fashion-MNIST items are 28 x 28
MEAN, STD = 0.5, 0.25  # clips in [0, 1] -> about zero mean, unit scale


def forward_path(pattern: int, rng: np.random.Generator, frames: int, room: int) -> np.ndarray:
    """(frames, 2) top-left (y, x) of the item for the forward member of motion pair ``pattern``."""
    s = np.linspace(0.0, 1.0, frames)
    fixed = rng.uniform(0, room)
    if pattern == 0:  # left to right at a random height
        return np.stack([np.full(frames, fixed), s * room], axis=1)
    if pattern == 1:  # downwards at a random column
        return np.stack([s * room, np.full(frames, fixed)], axis=1)
    if pattern == 2:  # three quarters of a clockwise circle (y grows downwards) from a random phase
        angle = rng.uniform(0, 2 * math.pi) + s * 1.5 * math.pi
        radius = room / 2
        return np.stack([radius + radius * np.sin(angle), radius + radius * np.cos(angle)], axis=1)
    along = s**2 * room  # speeding up along the main diagonal
    return np.stack([along, along], axis=1)


def texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size) background in [0, 0.6]: three random sine gratings plus pixel noise."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    out = np.zeros((size, size))
    for _ in range(3):
        theta, freq, phase = rng.uniform(0, math.pi), rng.uniform(0.1, 0.6), rng.uniform(0, 2 * math.pi)
        out += np.sin(freq * (xs * math.cos(theta) + ys * math.sin(theta)) + phase)
    out = (out - out.min()) / max(out.max() - out.min(), 1e-6)
    return np.clip(0.5 * out + rng.normal(0.0, 0.05, out.shape), 0.0, 0.6)


def camera_shifts(rng: np.random.Generator, frames: int, speed: float) -> np.ndarray:
    """(frames, 2) integer (y, x) offsets of a camera panning at a constant velocity drawn uniformly
    from [-speed, speed]^2 pixels per frame, centred on the middle of the clip."""
    velocity = rng.uniform(-speed, speed, size=2)
    return np.rint(np.outer(np.arange(frames) - (frames - 1) / 2, velocity)).astype(int)


def pan(scene: np.ndarray, shifts: np.ndarray, size: int) -> np.ndarray:
    """(T, size, size) views of a larger static ``scene`` whose centre window moves by ``shifts``."""
    margin = (len(scene) - size) // 2
    return np.stack(
        [scene[margin + y : margin + y + size, margin + x : margin + x + size] for y, x in shifts]
    )


def render(item: np.ndarray, background: np.ndarray, path: np.ndarray) -> np.ndarray:
    """(T, S, S) frames: the item (values in [0, 1], brightness as opacity) pasted at ``path`` over
    ``background``, one (S, S) image for every frame or (T, S, S), one per frame."""
    S = background.shape[-1]
    frames = np.broadcast_to(background, (len(path), S, S)).copy()
    alpha = item.astype(np.float64) / 255.0
    for t, (y, x) in enumerate(np.rint(path).astype(int)):
        patch = frames[t, y : y + ITEM, x : x + ITEM]
        frames[t, y : y + ITEM, x : x + ITEM] = patch * (1.0 - alpha) + alpha
    return frames


def camera_reach(speed: float, frames: int) -> int:
    """The largest offset (pixels, per axis) a camera of ``speed`` pixels per frame reaches from the
    clip's middle: the scene is that much larger than the view on every side."""
    return math.ceil(speed * (frames - 1) / 2)


class Draw(NamedTuple):
    """What one clip is made of: the item, the motion label, the background ((S, S), or (T, S, S)
    when the camera pans) and the item's top-left (T, 2) in the view, before any time reversal."""

    pick: int
    motion: int
    background: np.ndarray
    view_path: np.ndarray


class MovingItems(Dataset[dict[str, torch.Tensor]]):
    """Clips (1, T, S, S) normalised, ``appearance`` (0-9) and ``motion`` (0-7) labels."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        *,
        frames: int,
        size: int,
        seed: int,
        length: int | None,
        camera_speed: float = 0.0,
    ) -> None:
        self.images, self.labels = images, labels
        self.frames, self.size, self.seed, self.length = frames, size, seed, length
        self.camera_speed = camera_speed
        self.procedural = length is None

    def __len__(self) -> int:
        if self.length is None:
            raise TypeError("a procedural dataset has no length")
        return self.length

    def draw(self, index: int) -> Draw:
        """Clip ``index``'s draws, before any time reversal."""
        rng = np.random.default_rng([self.seed, index])
        pick = int(rng.integers(len(self.images)))
        motion = int(rng.integers(len(MOTIONS)))
        reach = camera_reach(self.camera_speed, self.frames)
        path = reach + forward_path(motion // 2, rng, self.frames, self.size - ITEM - 2 * reach)
        scene = texture(rng, self.size + 2 * reach)
        if self.camera_speed == 0:
            return Draw(pick, motion, scene, path)
        shifts = camera_shifts(rng, self.frames, self.camera_speed)  # the view pans over the scene
        return Draw(pick, motion, pan(scene, shifts, self.size), path - shifts)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self.length is not None and not 0 <= index < self.length:
            raise IndexError(index)
        draw = self.draw(index)
        frames = render(self.images[draw.pick], draw.background, draw.view_path)
        if draw.motion % 2:  # the pair's second member: the same frames in reverse order
            frames = frames[::-1]
        clip = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))[None]  # (1, T, S, S)
        return {
            "input": (clip - MEAN) / STD,
            "appearance": torch.tensor(int(self.labels[draw.pick])),
            "motion": torch.tensor(draw.motion),
        }


@register_datamodule("moving-fmnist")
class MovingFashionMNISTData(DataModule):
    """Moving Fashion-MNIST clips (1, T, S, S): 10 appearance labels and 8 motion labels."""

    upload = "video"

    label_names: ClassVar[dict[str, tuple[str, ...]]] = {"appearance": CLASSES, "motion": MOTIONS}

    def __init__(
        self,
        *,
        seed: int,
        root: str = DEFAULT_ROOT,
        num_frames: int = 8,
        size: int = 48,
        val_items: int = 5000,
        val_size: int = 256,
        test_size: int = 1024,
        probe_size: int = 2048,
        camera_speed: float = 0.0,
        batch_size: int = 32,
        eval_batch_size: int = 128,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
        if num_frames < 2 or size < ITEM:
            raise ConfigError(
                f"moving-fmnist needs num_frames >= 2 and size >= {ITEM}, got {num_frames}, {size}"
            )
        room = size - ITEM - 2 * camera_reach(camera_speed, num_frames)
        if camera_speed < 0 or room < 4:
            raise ConfigError(
                f"data.camera_speed={camera_speed} must be >= 0 and leave the item room to move: the "
                f"camera pans up to {camera_reach(camera_speed, num_frames)} px each way, so "
                f"size - {ITEM} - 2 x that = {room} px (needs >= 4)"
            )
        if min(val_items, val_size, test_size, probe_size) < 1:
            raise ConfigError("data.val_items, val_size, test_size and probe_size must be >= 1")
        self.root, self.num_frames, self.size, self.val_items = Path(root), num_frames, size, val_items
        self.camera_speed = camera_speed
        self.lengths: dict[str, int | None] = {
            "train": None, "val": val_size, "test": test_size, "probe": probe_size,
        }  # fmt: skip

    def _clips(self, images: np.ndarray, labels: np.ndarray, part: str) -> MovingItems:
        offset = {"train": 0, "val": 1_000_003, "test": 2_000_029, "probe": 3_000_017}[part]
        return MovingItems(
            images,
            labels,
            frames=self.num_frames,
            size=self.size,
            seed=self.seed + offset,
            length=self.lengths[part],
            camera_speed=self.camera_speed,
        )

    def _train_items(self, part: str) -> MovingItems:
        images, labels = load_idx_split(self.root, train=True)
        if not 0 < self.val_items < len(images):
            raise ConfigError(
                f"data.val_items={self.val_items} must be below the {len(images)} training items"
            )
        cut = len(images) - self.val_items
        if part == "val":
            return self._clips(images[cut:], labels[cut:], part)
        return self._clips(images[:cut], labels[:cut], part)

    def from_video(self, frames: np.ndarray) -> dict[str, torch.Tensor]:
        """A video as a test clip: grey, ``num_frames`` frames spread over it, resized, normalised."""
        clip = clip_frames(frames, self.num_frames, self.size, grey=True)  # (T, 1, S, S)
        return {"input": (clip.transpose(0, 1) - MEAN) / STD}  # (1, T, S, S) as MovingItems

    def build(self, split: Split) -> MovingItems:
        if split == "test":
            return self._clips(*load_idx_split(self.root, train=False), "test")
        return self._train_items(split)

    def probe_dataset(self) -> MovingItems:
        """Labelled clips of training items for fitting frozen-feature probes (``probe_size`` of them)."""
        return self._train_items("probe")

    def probe_dataloader(self) -> torch.utils.data.DataLoader[object]:
        return self._loader(self.probe_dataset(), batch_size=self.eval_batch_size)
