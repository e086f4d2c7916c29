"""A pinhole camera looking down at the ground plane, as in CLEVR/CLEVRER.

World frame: x to the right, y away from the camera, z up; the ground is z = 0.
The camera sits at ``distance`` from ``target``, raised by ``elevation`` degrees
and turned by ``azimuth`` degrees about the vertical axis (0: looking along +y).
``fov`` is the vertical field of view; the horizontal one follows from the image's
aspect ratio, so a 96x64 image sees more of the ground sideways, not a stretched
scene. Pixel (row r, column c) covers screen coordinates [c, c + 1) x [r, r + 1);
its ray goes through the pixel centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attnlab.data.clevrer_lite.intersect import CUBE_HALF
from attnlab.errors import ConfigError

REACH = max(1.0, CUBE_HALF * math.sqrt(2)) + 0.01  # in radii, with a margin for rounding


@dataclass(frozen=True)
class CameraConfig:
    distance: float = 12.0
    elevation: float = 42.0  # degrees above the ground plane
    azimuth: float = 0.0  # degrees about z; 0 looks along +y
    fov: float = 30.0  # vertical field of view, degrees
    target: tuple[float, float, float] = (0.0, 0.6, 0.0)

    def __post_init__(self) -> None:
        if self.distance <= 0 or not 10 <= self.elevation <= 89 or not 5 <= self.fov <= 120:
            raise ConfigError(
                "camera needs distance > 0, 10 <= elevation <= 89 and 5 <= fov <= 120 (degrees), "
                f"got {self.distance}, {self.elevation}, {self.fov}"
            )
        if len(self.target) != 3:
            raise ConfigError(f"camera target must be (x, y, z), got {self.target}")


class Camera:
    """The camera's pose and its per-pixel rays for one image size."""

    def __init__(self, config: CameraConfig, height: int, width: int):
        self.config, self.height, self.width = config, height, width
        el, az = math.radians(config.elevation), math.radians(config.azimuth)
        target = np.asarray(config.target, dtype=np.float64)
        back = np.array([-math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)])
        self.origin = target + config.distance * back  # (3,)
        self.forward = -back
        self.right = np.cross(self.forward, [0.0, 0.0, 1.0])
        self.right /= np.linalg.norm(self.right)
        self.up = np.cross(self.right, self.forward)
        self.tan_y = math.tan(math.radians(config.fov) / 2)
        self.tan_x = self.tan_y * width / height  # square pixels
        self.rays = self._rays()  # (H, W, 3) unit directions
        self.ground_bounds = self._ground_bounds()  # (2, 2): lo and hi (x, y) of the ground in view

    def _rays(self) -> np.ndarray:
        sx = ((np.arange(self.width) + 0.5) / self.width * 2 - 1) * self.tan_x  # (W,)
        sy = (1 - (np.arange(self.height) + 0.5) / self.height * 2) * self.tan_y  # (H,)
        d = (
            self.forward[None, None, :]
            + sx[None, :, None] * self.right[None, None, :]
            + sy[:, None, None] * self.up[None, None, :]
        )  # (H, W, 3)
        return d / np.linalg.norm(d, axis=-1, keepdims=True)

    def _ground_bounds(self) -> np.ndarray:
        rays = self.rays.reshape(-1, 3)
        down = rays[:, 2] < -1e-6
        t = -self.origin[2] / rays[down, 2]
        ground = self.origin[:2] + t[:, None] * rays[down, :2]  # (N, 2) where pixel rays meet z = 0
        return np.stack([ground.min(axis=0), ground.max(axis=0)])

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (..., 3) -> screen coordinates (..., 2) as (column, row) in
        pixels, and their depth along the optical axis (...,)."""
        rel = points - self.origin
        depth = rel @ self.forward
        safe = np.maximum(depth, 1e-6)  # points behind the camera land far off-screen
        col = ((rel @ self.right) / safe / self.tan_x + 1) / 2 * self.width
        row = (1 - (rel @ self.up) / safe / self.tan_y) / 2 * self.height
        return np.stack([col, row], axis=-1), depth

    def screen_boxes(self, corners: np.ndarray) -> np.ndarray:
        """Pixel boxes (..., 4) = (row0, row1, col0, col1), half-open and clipped to
        the image, covering the projections of ``corners`` (..., C, 3); empty (row0 ==
        row1 or col0 == col1) when off-screen or behind the camera."""
        screen, depth = self.project(corners)  # (..., C, 2), (..., C)
        lo, hi = np.floor(screen.min(axis=-2)), np.floor(screen.max(axis=-2)) + 1  # (..., 2)
        col0, row0 = np.clip(lo[..., 0], 0, self.width), np.clip(lo[..., 1], 0, self.height)
        col1, row1 = np.clip(hi[..., 0], 0, self.width), np.clip(hi[..., 1], 0, self.height)
        boxes = np.stack([row0, row1, col0, col1], axis=-1).astype(np.int64)
        behind = (depth <= 1e-3).any(axis=-1)
        boxes[behind] = 0
        return boxes


def object_corners(centres: np.ndarray, radius: float, height: float) -> np.ndarray:
    """The 8 corners (..., 8, 3) of the upright box around an object of ``radius``
    standing on the ground at ``centres`` (..., 2), ``height`` tall. The box reaches
    ``REACH`` radii sideways: a turned cube's corners stick out of its radius."""
    half = REACH * radius
    dx = np.array([-1, 1, -1, 1, -1, 1, -1, 1]) * half
    dy = np.array([-1, -1, 1, 1, -1, -1, 1, 1]) * half
    dz = np.array([0, 0, 0, 0, 1, 1, 1, 1]) * height
    x = centres[..., None, 0] + dx
    y = centres[..., None, 1] + dy
    z = np.broadcast_to(dz, x.shape)
    return np.stack([x, y, z], axis=-1)


def in_view(camera: Camera, centres: np.ndarray, active: np.ndarray, radius: float) -> np.ndarray:
    """(F, K) bool: the object is present and its bounding box reaches into the image.
    A superset of "has visible pixels" (occlusion aside), so a mask implies in view."""
    boxes = camera.screen_boxes(object_corners(centres, radius, 2 * radius))  # (F, K, 4)
    return active & (boxes[..., 1] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 2])
