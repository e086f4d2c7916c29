"""Synthetic actions: the class is in the motion and its time order, not in any one frame.

A small Something-Something-like video set (seed 001 trains ST-ABN on
Something-Something V1/V2, whose classes differ by how things move). Each clip
shows one or two flat shapes on a noisy background; the action decides the
motion. Pairs of classes are built so that appearance cannot tell them apart:
"left to right" and "right to left" contain the same frames in opposite order,
as do "approaching" and "receding"; "pretending to put behind" starts and ends
with the very frame it started with, like "static", and differs only in the
middle. Sample ``i`` is a pure function of ``(seed, i)``; every frame comes with
each object's box (x0, y0, x1, y1 in pixels) and whether it is visible.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Dataset

from attnlab.data._registry import register_datamodule
from attnlab.data.datamodule import DataModule, Split
from attnlab.data.uploads import clip_frames
from attnlab.errors import ConfigError

ACTIONS = (
    "moving left to right",
    "moving right to left",
    "approaching",
    "receding",
    "rotating",
    "two objects colliding",
    "putting something behind something",
    "pretending to put something behind something",
    "static",
)


def _shape_mask(kind: int, cx: float, cy: float, r: float, angle: float, size: int) -> np.ndarray:
    """Boolean (size, size) mask of a square (0), disc (1) or triangle (2), rotated by ``angle``."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    c, s = math.cos(angle), math.sin(angle)
    u = ((xs - cx) * c + (ys - cy) * s) / r  # rotated, unit-radius coordinates
    v = (-(xs - cx) * s + (ys - cy) * c) / r
    if kind == 0:
        return (np.abs(u) <= 1) & (np.abs(v) <= 1)
    if kind == 1:
        return u * u + v * v <= 1
    return (v <= 0.8) & (v >= 2 * np.abs(u) - 1.2)  # an isosceles triangle: rotation is visible


class ActionClips(Dataset[dict[str, torch.Tensor]]):
    def __init__(self, *, num_frames: int, size: int, seed: int, length: int | None):
        self.num_frames, self.size, self.seed, self.length = num_frames, size, seed, length
        self.procedural = length is None

    def __len__(self) -> int:
        if self.length is None:
            raise TypeError("a procedural dataset has no length")
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self.length is not None and not 0 <= index < self.length:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, index])
        label = int(rng.integers(len(ACTIONS)))
        tracks = _tracks(label, rng, self.num_frames, self.size)
        video, boxes, visible = _render(tracks, rng, self.num_frames, self.size)
        return {
            "input": torch.from_numpy(video),  # (3, T, H, W) in [0, 1]
            "label": torch.tensor(label),
            "boxes": torch.from_numpy(boxes),  # (T, 2, 4)
            "box_visible": torch.from_numpy(visible),  # (T, 2)
        }


def _tracks(label: int, rng: np.random.Generator, T: int, size: int) -> list[dict[str, np.ndarray | int]]:
    """Per object: kind, colour, depth, and per-frame centre x, y, radius, angle, present."""
    t = np.linspace(0.0, 1.0, T, dtype=np.float32)
    r0 = size * rng.uniform(0.08, 0.13)
    y0 = size * rng.uniform(0.3, 0.7)
    margin = r0 + 1
    left, right = margin, size - margin

    def obj(x, y, r, angle=None, depth=1, kinds=(0, 1, 2)) -> dict[str, np.ndarray | int]:
        return {
            "kind": int(rng.choice(kinds)),
            "colour": rng.uniform(0.3, 1.0, 3).astype(np.float32),
            "x": np.broadcast_to(x, (T,)).astype(np.float32),
            "y": np.broadcast_to(y, (T,)).astype(np.float32),
            "r": np.broadcast_to(r, (T,)).astype(np.float32),
            "angle": np.zeros(T, np.float32) if angle is None else angle.astype(np.float32),
            "depth": depth,
        }

    if label in (0, 1):  # moving horizontally; 1 is 0 reversed in time
        x = left + (right - left) * t
        return [obj(x if label == 0 else x[::-1], y0, r0)]
    if label in (2, 3):  # scale grows / shrinks about a fixed centre
        r = r0 * 0.6 + r0 * 1.4 * t
        cx = size * rng.uniform(0.35, 0.65)
        return [obj(cx, y0, r if label == 2 else r[::-1])]
    if label == 4:
        spin = rng.choice([-1.0, 1.0]) * np.pi * t * rng.uniform(1.0, 1.6)
        centre = size * rng.uniform(0.35, 0.65)
        return [obj(centre, y0, r0 * 1.3, angle=spin, kinds=(0, 2))]  # a spinning disc looks static
    if label == 5:  # two objects meet in the middle and bounce back
        meet = np.minimum(t, 1 - t) * 2  # 0 -> 1 -> 0
        gap = (size / 2 - 2 * r0 - 1) * (1 - meet)  # both stay inside the frame
        return [obj(size / 2 - r0 - gap, y0, r0), obj(size / 2 + r0 + gap, y0, r0)]
    occluder_x = size * rng.uniform(0.55, 0.7)
    # drawn last, in front; a square 1.6x the radius covers any shape of radius r0 behind it
    occluder = obj(occluder_x, y0, r0 * 1.6, depth=2, kinds=(0,))
    if label == 6:  # into hiding and staying there
        x = left + (occluder_x - left) * np.minimum(1.0, t * 1.5)
        return [obj(x, y0, r0), occluder]
    if label == 7:  # towards hiding and back to the very start
        x = left + (occluder_x - left) * np.minimum(t, 1 - t) * 2
        return [obj(x, y0, r0), occluder]
    return [obj(left, y0, r0), occluder]  # static: the start frame of 7 for all T frames


def _render(tracks: list[dict[str, np.ndarray | int]], rng: np.random.Generator, T: int, size: int):
    background = rng.uniform(0.0, 0.25, 3).astype(np.float32)
    noise = rng.normal(0.0, 0.03, (3, size, size)).astype(np.float32)  # static texture, same every frame
    video = np.empty((3, T, size, size), np.float32)
    boxes = np.zeros((T, 2, 4), np.float32)
    visible = np.zeros((T, 2), bool)
    order = sorted(range(len(tracks)), key=lambda i: int(tracks[i]["depth"]))  # type: ignore[arg-type]
    for f in range(T):
        frame = background[:, None, None] + noise
        owner = np.full((size, size), -1)
        for i in order:
            o = tracks[i]
            mask = _shape_mask(
                int(o["kind"]),
                float(o["x"][f]),
                float(o["y"][f]),
                float(o["r"][f]),  # type: ignore[index]
                float(o["angle"][f]),
                size,
            )  # type: ignore[index]
            frame[:, mask] = np.asarray(o["colour"])[:, None]
            owner[mask] = i
        video[:, f] = np.clip(frame, 0.0, 1.0)
        for i in range(min(2, len(tracks))):
            ys, xs = np.nonzero(owner == i)
            if len(xs):
                boxes[f, i] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
                visible[f, i] = True
    return video, boxes, visible


@register_datamodule("actions")
class ActionsData(DataModule):
    """Synthetic action clips (3, T, H, W); 9 classes told apart only by motion and its order."""

    num_classes = len(ACTIONS)
    class_names = ACTIONS  # label -> name, for reports

    def __init__(
        self,
        *,
        seed: int,
        num_frames: int = 16,
        size: int = 48,
        val_size: int = 512,
        test_size: int = 1024,
        batch_size: int = 16,
        eval_batch_size: int = 64,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
        if num_frames < 4 or size < 16:
            raise ConfigError(f"actions needs num_frames >= 4 and size >= 16, got {num_frames}, {size}")
        self.num_frames, self.size = num_frames, size
        self.lengths: dict[Split, int | None] = {"train": None, "val": val_size, "test": test_size}

    upload = "video"

    def from_video(self, frames: np.ndarray) -> dict[str, torch.Tensor]:
        """A video as a test clip: ``num_frames`` frames spread over it, ``size`` x ``size``, in [0, 1]."""
        clip = clip_frames(frames, self.num_frames, self.size)  # (T, 3, S, S)
        return {"input": clip.transpose(0, 1)}  # (3, T, S, S) as ActionClips

    def build(self, split: Split) -> ActionClips:
        offset = {"train": 0, "val": 1_000_003, "test": 2_000_029}[split]
        return ActionClips(
            num_frames=self.num_frames, size=self.size, seed=self.seed + offset, length=self.lengths[split]
        )
