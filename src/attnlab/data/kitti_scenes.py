"""LiDAR scenes for 3-D detection: generated KITTI-format scenes, or a real KITTI root.

``synth-kitti`` serves :mod:`attnlab.data.synth_kitti`'s ray-cast scenes (scene ``i`` of a split
is a pure function of ``(seed + split offset, i)``; each is generated on first use and kept in
memory) or, with ``root``, real KITTI frames through :class:`attnlab.data.kitti.KittiReader` and
the split lists ``ImageSets/<split>.txt`` (``test`` reads ``val`` unless ``test_split`` says
otherwise).

Each scene is reduced as KITTI pipelines reduce it (SECOND's ``velodyne_reduced``): points in the
field of view of camera 2 and in the BEV ``point_range``. Its targets are the Car / Pedestrian /
Cyclist boxes in the LiDAR frame whose centre is in that range; its evaluation labels are the
frame's KITTI labels, minus the classified objects outside the range (DontCare regions kept).

Training scenes may be augmented (as PointPillars does, section 3: flip across the x axis, a
global rotation and scale of points and boxes; no ground-truth database sampling). Training is a
stream: sample ``i`` is scene ``perm_e(i mod N)`` of a per-pass permutation ``e = i // N``, with
its own augmentation, so passes differ. Batches are :class:`SceneBatch` (ragged lists).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from attnlab.data._registry import register_datamodule
from attnlab.data.datamodule import DataModule, Split
from attnlab.data.kitti import Calibration, KittiReader, boxes_camera_to_lidar, lidar_box_corners, read_split
from attnlab.data.synth_kitti import SceneConfig, generate_scene
from attnlab.errors import ConfigError, InputError
from attnlab.metrics.kitti_objects import KittiObjects

CLASSES = ("Car", "Pedestrian", "Cyclist")
IMAGE_HW = (375, 1242)  # the generated scenes' image (real frames: KITTI's, about the same)


@dataclass
class LidarScene:
    points: torch.Tensor  # (N, 4) x y z reflectance, reduced
    boxes: torch.Tensor  # (M, 7) LiDAR boxes x y z w l h ry of the classes, in range
    labels: torch.Tensor  # (M,) long: index into CLASSES
    objects: KittiObjects  # evaluation labels (camera frame)
    calib: Calibration
    index: int


@dataclass
class SceneBatch:
    """B ragged scenes (Lightning moves the tensors in the lists to the device)."""

    clouds: list[torch.Tensor]
    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]
    objects: list[KittiObjects]
    calibs: list[Calibration]
    index: torch.Tensor  # (B,) long

    @property
    def batch_size(self) -> int:
        return len(self.clouds)


def collate_scenes(samples: list[LidarScene]) -> SceneBatch:
    return SceneBatch(
        clouds=[s.points for s in samples],
        boxes=[s.boxes for s in samples],
        labels=[s.labels for s in samples],
        objects=[s.objects for s in samples],
        calibs=[s.calib for s in samples],
        index=torch.tensor([s.index for s in samples]),
    )


def in_view(xyz: np.ndarray, calib: Calibration, image_hw: tuple[int, int]) -> np.ndarray:
    """(N,) whether LiDAR points project into camera 2's image (in front of it)."""
    cam = calib.lidar_to_camera(xyz.astype(np.float64))
    uv = calib.camera_to_image(cam)
    h, w = image_hw
    return (cam[:, 2] > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)


def in_range(xy: np.ndarray, point_range: tuple[float, ...]) -> np.ndarray:
    x0, y0, _, x1, y1, _ = point_range
    return (xy[:, 0] >= x0) & (xy[:, 0] < x1) & (xy[:, 1] >= y0) & (xy[:, 1] < y1)


def make_scene(
    points: np.ndarray,
    objects: KittiObjects,
    calib: Calibration,
    index: int,
    point_range: tuple[float, ...],
) -> LidarScene:
    """Reduce a frame to its view and range; targets and evaluation labels (module docstring)."""
    keep = in_view(points[:, :3], calib, IMAGE_HW) & in_range(points[:, :2], point_range)
    keep &= (points[:, 2] >= point_range[2]) & (points[:, 2] < point_range[5])
    boxes = boxes_camera_to_lidar(objects, calib)  # (M, 7)
    classified = np.isin(objects.name, CLASSES)
    inside = in_range(boxes[:, :2], point_range)
    target = classified & inside
    labels = np.array([CLASSES.index(n) for n in objects.name[target]], dtype=np.int64)
    keep_eval = ~classified | inside
    evaluated = KittiObjects(**{f: getattr(objects, f)[keep_eval] for f in objects.__dataclass_fields__})
    return LidarScene(
        points=torch.from_numpy(np.ascontiguousarray(points[keep])),
        boxes=torch.from_numpy(boxes[target]).float(),
        labels=torch.from_numpy(labels),
        objects=evaluated,
        calib=calib,
        index=index,
    )


@dataclass(frozen=True)
class Augment:
    """Training augmentation (PointPillars section 3): flip across x, rotation, scale."""

    flip: bool = True
    rotation: float = math.pi / 4  # uniform in [-rotation, rotation]
    scale: tuple[float, float] = (0.95, 1.05)


def augment(scene: LidarScene, aug: Augment, gen: torch.Generator) -> LidarScene:
    """The scene flipped (y -> -y, ry -> pi - ry), turned by t (ry -> ry - t) and scaled."""
    pts, boxes = scene.points.clone(), scene.boxes.clone()
    if aug.flip and bool(torch.rand((), generator=gen) < 0.5):
        pts[:, 1], boxes[:, 1], boxes[:, 6] = -pts[:, 1], -boxes[:, 1], math.pi - boxes[:, 6]
    t = float((2 * torch.rand((), generator=gen) - 1) * aug.rotation)
    s = float(aug.scale[0] + (aug.scale[1] - aug.scale[0]) * torch.rand((), generator=gen))
    rot = torch.tensor([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]], dtype=pts.dtype)
    pts[:, :2], boxes[:, :2] = pts[:, :2] @ rot.T, boxes[:, :2] @ rot.T
    boxes[:, 6] = boxes[:, 6] - t
    pts[:, :3], boxes[:, :6] = pts[:, :3] * s, boxes[:, :6] * s
    return LidarScene(pts, boxes, scene.labels, scene.objects, scene.calib, scene.index)


class SceneSource:
    """Where scenes come from: ``read(i)`` -> (points, objects, calib); ``len``."""

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, i: int) -> tuple[np.ndarray, KittiObjects, Calibration]:
        raise NotImplementedError


class SynthSource(SceneSource):
    def __init__(self, seed: int, size: int, cfg: SceneConfig) -> None:
        self.seed, self.size, self.cfg = seed, size, cfg

    def __len__(self) -> int:
        return self.size

    def read(self, i: int) -> tuple[np.ndarray, KittiObjects, Calibration]:
        scene = generate_scene(self.seed, i, self.cfg)
        return scene.points, scene.objects, scene.calib


class KittiSource(SceneSource):
    def __init__(self, reader: KittiReader, frame_ids: list[str]) -> None:
        self.reader, self.ids = reader, frame_ids

    def __len__(self) -> int:
        return len(self.ids)

    def read(self, i: int) -> tuple[np.ndarray, KittiObjects, Calibration]:
        frame = self.reader.read(self.ids[i])
        if frame.objects is None:
            raise ConfigError(f"KITTI frame {self.ids[i]} has no labels: use a labelled split (training/)")
        return frame.points, frame.objects, frame.calib


class SceneSet(Dataset[LidarScene]):
    """Reduced scenes of a source, cached in memory; a training stream when ``augment`` is set."""

    def __init__(
        self,
        source: SceneSource,
        point_range: tuple[float, ...],
        seed: int,
        augment: Augment | None,
        stream: bool,
    ) -> None:
        self.source, self.point_range, self.seed = source, point_range, seed
        self.aug, self.procedural = augment, stream
        self._cache: dict[int, LidarScene] = {}

    def __len__(self) -> int:
        if self.procedural:
            raise TypeError("a procedural dataset has no length")
        return len(self.source)

    def scene(self, i: int) -> LidarScene:
        if i not in self._cache:
            self._cache[i] = make_scene(*self.source.read(i), index=i, point_range=self.point_range)
        return self._cache[i]

    def __getitem__(self, index: int) -> LidarScene:
        if not self.procedural:
            if not 0 <= index < len(self.source):
                raise IndexError(index)
            return self.scene(index)
        n = len(self.source)
        epoch, offset = divmod(index, n)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 7_919 + epoch))
        scene = self.scene(int(order[offset]))
        if self.aug is None:
            return scene
        return augment(scene, self.aug, torch.Generator().manual_seed(self.seed * 104_729 + index))


@register_datamodule("synth-kitti")
class SynthKittiData(DataModule):
    """Ray-cast LiDAR scenes in KITTI's format (generated on first use), or a KITTI ``root``."""

    def __init__(
        self,
        *,
        seed: int,
        root: str | None = None,
        train_split: str = "train",
        val_split: str = "val",
        test_split: str = "val",
        train_size: int = 512,
        val_size: int = 64,
        test_size: int = 128,
        point_range: tuple[float, float, float, float, float, float] = (0.0, -19.2, -3.0, 38.4, 19.2, 1.0),
        augment: bool = True,
        rotation: float = math.pi / 4,
        scale: tuple[float, float] = (0.95, 1.05),
        batch_size: int = 4,
        eval_batch_size: int = 8,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
        if min(train_size, val_size, test_size) < 1:
            raise ConfigError("synth-kitti train_size, val_size and test_size must be >= 1")
        if point_range[3] <= point_range[0] or point_range[4] <= point_range[1]:
            raise ConfigError(
                f"data.point_range must be (x0, y0, z0, x1, y1, z1) with x1 > x0, y1 > y0, got {point_range}"
            )
        self.root = None if root is None else Path(root)
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.sizes: dict[Split, int] = {"train": train_size, "val": val_size, "test": test_size}
        self.point_range = tuple(float(v) for v in point_range)
        self.aug = Augment(rotation=rotation, scale=scale) if augment else None
        self.class_names = CLASSES

    upload = "points"

    def from_points(self, points: np.ndarray) -> dict[str, torch.Tensor]:
        """A LiDAR scan as a scene without labels: the points inside ``point_range`` (no camera
        calibration comes with an upload, so unlike KITTI frames it is not cut to the image's view)."""
        keep = in_range(points[:, :2], self.point_range)
        keep &= (points[:, 2] >= self.point_range[2]) & (points[:, 2] < self.point_range[5])
        if not keep.any():
            raise InputError(f"none of the {len(points)} points lies in this run's range {self.point_range}")
        return {
            "points": torch.from_numpy(np.ascontiguousarray(points[keep])),
            "boxes": torch.zeros(0, 7),
            "labels": torch.zeros(0, dtype=torch.long),
        }

    def collate_fn(self) -> Callable[[list[Any]], Any]:
        return collate_scenes

    def source(self, split: Split) -> SceneSource:
        if self.root is None:
            offset = {"train": 0, "val": 1_000_003, "test": 2_000_029}[split]  # disjoint scenes per split
            return SynthSource(self.seed + offset, self.sizes[split], SceneConfig())
        ids = read_split(self.root / "ImageSets" / f"{self.splits[split]}.txt")
        return KittiSource(KittiReader(self.root, "training"), ids)

    def build(self, split: Split) -> SceneSet:
        train = split == "train"
        return SceneSet(
            self.source(split), self.point_range, self.seed, self.aug if train else None, stream=train
        )


def detections_to_kitti(
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    calib: Calibration,
    image_hw: tuple[int, int] = IMAGE_HW,
) -> KittiObjects:
    """LiDAR detections (N, 7) -> KITTI detection objects, keeping those seen in the image.

    The 2-D box is the clipped projection of the 8 corners; ``alpha = ry - atan2(x, z)`` of the
    camera-frame centre (KITTI's definition; OpenPCDet reads the angle from the LiDAR centre);
    ``ry`` wrapped to ``[-pi, pi)``.
    """
    corners = lidar_box_corners(boxes.astype(np.float64))  # (N, 8, 3)
    cam = calib.lidar_to_camera(corners.reshape(-1, 3)).reshape(-1, 8, 3)
    uv = calib.camera_to_image(cam.reshape(-1, 3)).reshape(-1, 8, 2)
    h, w = image_hw
    front = cam[..., 2].min(1) > 0.1
    x1, y1 = uv[..., 0].min(1).clip(0, w - 1), uv[..., 1].min(1).clip(0, h - 1)
    x2, y2 = uv[..., 0].max(1).clip(0, w - 1), uv[..., 1].max(1).clip(0, h - 1)
    seen = front & (x2 > x1) & (y2 > y1)
    b = boxes[seen].astype(np.float64)
    loc = calib.lidar_to_camera(b[:, :3])
    ry = (b[:, 6] + np.pi) % (2 * np.pi) - np.pi
    alpha = (ry - np.arctan2(loc[:, 0], loc[:, 2]) + np.pi) % (2 * np.pi) - np.pi
    n = len(b)
    return KittiObjects(
        name=np.array([CLASSES[i] for i in labels[seen]], dtype="<U16").reshape(n),
        truncated=np.zeros(n),
        occluded=np.zeros(n, dtype=np.int64),
        alpha=alpha,
        bbox=np.stack([x1, y1, x2, y2], 1)[seen].reshape(n, 4),
        dimensions=np.stack([b[:, 4], b[:, 5], b[:, 3]], 1).reshape(n, 3),
        location=loc.reshape(n, 3),
        rotation_y=ry,
        score=scores[seen].astype(np.float64),
    )
