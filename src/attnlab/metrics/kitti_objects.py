"""The objects of one KITTI frame (ground truth or detections) as arrays, in KITTI's columns.

A label line is ``type truncated occluded alpha x1 y1 x2 y2 h w l x y z ry [score]`` in the
rectified camera frame of ``P2`` (``y`` points down, ``(x, y, z)`` is the bottom centre). The
arrays keep the official evaluation's order of dimensions, ``l h w``, not the file's ``h w l``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnlab.errors import InputError


@dataclass
class KittiObjects:
    """N objects of one frame; detections carry scores, ground truth has ``score`` all 0."""

    name: np.ndarray  # (N,) str: Car, Pedestrian, Cyclist, Van, Truck, Person_sitting, Tram, Misc, DontCare
    truncated: np.ndarray  # (N,) float: 0 (in the image) .. 1 (leaving it); -1 for DontCare
    occluded: np.ndarray  # (N,) int: 0 visible, 1 partly, 2 largely occluded, 3 unknown; -1 DontCare
    alpha: np.ndarray  # (N,) float: observation angle, [-pi, pi)
    bbox: np.ndarray  # (N, 4) float: x1 y1 x2 y2 in pixels of image_2
    dimensions: np.ndarray  # (N, 3) float: l h w in metres
    location: np.ndarray  # (N, 3) float: x y z (bottom centre) in the rectified camera frame
    rotation_y: np.ndarray  # (N,) float: yaw about the camera's y axis
    score: np.ndarray  # (N,) float: detection confidence (0 for ground truth)

    def __post_init__(self) -> None:
        n = len(self.name)
        shapes = {
            "truncated": (n,),
            "occluded": (n,),
            "alpha": (n,),
            "bbox": (n, 4),
            "dimensions": (n, 3),
            "location": (n, 3),
            "rotation_y": (n,),
            "score": (n,),
        }
        for field, shape in shapes.items():
            if getattr(self, field).shape != shape:
                raise InputError(
                    f"KittiObjects.{field} must have shape {shape} for {n} objects, "
                    f"got {getattr(self, field).shape}"
                )

    def __len__(self) -> int:
        return len(self.name)

    @classmethod
    def empty(cls) -> KittiObjects:
        return cls(
            name=np.zeros(0, dtype="<U16"),
            truncated=np.zeros(0),
            occluded=np.zeros(0, dtype=np.int64),
            alpha=np.zeros(0),
            bbox=np.zeros((0, 4)),
            dimensions=np.zeros((0, 3)),
            location=np.zeros((0, 3)),
            rotation_y=np.zeros(0),
            score=np.zeros(0),
        )

    def boxes_camera(self) -> np.ndarray:
        """(N, 7) boxes ``(x, y, z, l, h, w, ry)`` in the camera frame (y = bottom face)."""
        return np.concatenate([self.location, self.dimensions, self.rotation_y[:, None]], axis=1)

    def boxes_bev(self) -> np.ndarray:
        """(N, 5) bird's-eye boxes ``(x, z, l, w, ry)`` as the official evaluation builds them."""
        return np.stack(
            [
                self.location[:, 0],
                self.location[:, 2],
                self.dimensions[:, 0],
                self.dimensions[:, 2],
                self.rotation_y,
            ],
            axis=1,
        )
