"""Ray-cast frames in the CLEVR look: grey ground, one key light, matte rubber and
shiny metal, hard shadows, and the visible-instance id map that goes with them.

Per frame and object the work is confined to the object's screen box (the
projection of its bounding box) and its shadow's box, so a 64x64 frame of six
objects costs a few hundred small numpy operations. Depth is resolved per pixel
(nearest hit wins), which gives occlusion-aware masks for free: pixel p has id k + 1
when object k is the first surface its ray meets, 0 when that is the ground.

Shading (colours as albedo in display space, no gamma): ambient + Lambert from one
directional light; rubber adds a faint broad highlight; metal darkens its diffuse
part, reflects a grey-to-white environment tinted by its colour and adds a sharp
white highlight. Shadows: the ground is darkened where a ray towards the light
meets an object (objects do not shadow each other). No anti-aliasing: each pixel
belongs to exactly one object or the ground.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attnlab.data.clevrer_lite.camera import Camera, object_corners
from attnlab.data.clevrer_lite.intersect import hit, normals
from attnlab.errors import ConfigError

# CLEVR's colours (clevr-dataset-gen data/properties.json), RGB 0-255
PALETTE = {
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}


@dataclass(frozen=True)
class RenderConfig:
    light_azimuth: float = -40.0  # degrees about z, 0: light behind the camera
    light_elevation: float = 55.0
    ambient: float = 0.45
    shadow: float = 0.45  # fraction of the direct light a shadow removes from the ground
    ground: float = 0.62  # ground albedo (grey)

    def __post_init__(self) -> None:
        if not 5 <= self.light_elevation <= 90:
            raise ConfigError(
                f"render light_elevation must be in [5, 90] degrees, got {self.light_elevation}"
            )
        for name in ("ambient", "shadow", "ground"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"render {name} must be in [0, 1], got {getattr(self, name)}")


@dataclass(frozen=True)
class Looks:
    """What the K objects look like."""

    shapes: np.ndarray  # (K,) int, SHAPE_CODES
    albedo: np.ndarray  # (K, 3) float, 0-1
    metal: np.ndarray  # (K,) bool
    angles: np.ndarray  # (K,) float, yaw in radians


def light_direction(config: RenderConfig, camera: Camera) -> np.ndarray:
    """Unit vector towards the light, its azimuth relative to the camera's."""
    el = math.radians(config.light_elevation)
    base = math.radians(camera.config.azimuth + config.light_azimuth)
    # the camera looks along (sin az, cos az); the light at azimuth 0 sits behind it
    return np.array([-math.sin(base) * math.cos(el), -math.cos(base) * math.cos(el), math.sin(el)])


class Renderer:
    """Renders scenes seen by ``camera``; the ground and its shading are computed once."""

    def __init__(self, config: RenderConfig, camera: Camera, radius: float):
        self.config, self.camera, self.radius = config, camera, radius
        self.light = light_direction(config, camera)
        dz = camera.rays[..., 2]
        with np.errstate(divide="ignore"):
            t = np.where(dz < -1e-9, -camera.origin[2] / dz, np.inf)  # (H, W) distance to the ground
        self.ground_t = t
        self.ground_points = camera.origin + np.where(np.isfinite(t), t, 0.0)[..., None] * camera.rays
        self.background = self._background()  # (H, W, 3) float32
        self.shadowed = np.float32(1 - config.shadow * (1 - config.ambient))  # ground light left in shadow

    def _background(self) -> np.ndarray:
        c = self.config
        lit = c.ground * (c.ambient + (1 - c.ambient) * self.light[2])
        # a gentle fall-off away from the scene's centre, like CLEVR's spot-lit floor
        dist = np.linalg.norm(
            self.ground_points[..., :2] - np.asarray(self.camera.config.target[:2]), axis=-1
        )
        ground = lit * (1.0 - 0.25 * np.clip(dist / 12.0, 0, 1))
        ground = np.where(np.isfinite(self.ground_t), ground, lit * 0.75)  # beyond the horizon
        return np.repeat(ground[..., None], 3, axis=-1).astype(np.float32)

    def boxes(self, positions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Screen boxes (F, K, 4) of the objects and of their shadows on the ground."""
        r = self.radius
        body = self.camera.screen_boxes(object_corners(positions, r, 2 * r))
        # the shadow of a solid of height 2r reaches 2r * cot(elevation) away from the light
        reach = -self.light[:2] / self.light[2] * 2 * r
        foot = object_corners(positions, r, 0.0)[..., :4, :]  # (F, K, 4, 3), on the ground
        tip = foot + np.array([reach[0], reach[1], 0.0])
        shadow = self.camera.screen_boxes(np.concatenate([foot, tip], axis=-2))
        body[~active] = 0
        shadow[~active] = 0
        return body, shadow

    def render(
        self, looks: Looks, positions: np.ndarray, active: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Frames (F, H, W, 3) uint8 and id maps (F, H, W) uint8 (0 ground, k + 1 object k)
        for positions (F, K, 2) and presence (F, K)."""
        f_count = positions.shape[0]
        h, w = self.camera.height, self.camera.width
        frames = np.empty((f_count, h, w, 3), np.uint8)
        ids = np.zeros((f_count, h, w), np.uint8)
        body, shadow = self.boxes(positions, active)
        for f in range(f_count):
            frames[f] = self._frame(looks, positions[f], body[f], shadow[f], ids[f])
        return frames, ids

    def _frame(
        self, looks: Looks, xy: np.ndarray, body: np.ndarray, shadow: np.ndarray, ids: np.ndarray
    ) -> np.ndarray:
        depth = self.ground_t.copy()  # (H, W)
        light = np.ones(depth.shape, np.float32)  # direct light reaching the ground
        for k in range(xy.shape[0]):
            self._cast_shadow(looks, k, xy[k], shadow[k], light)
            self._depth_test(looks, k, xy[k], body[k], depth, ids)
        image = self.background * light[..., None]
        for k in range(xy.shape[0]):
            self._shade(looks, k, xy[k], body[k], depth, ids, image)
        return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)

    def _cast_shadow(self, looks: Looks, k: int, xy: np.ndarray, box: np.ndarray, light: np.ndarray) -> None:
        r0, r1, c0, c1 = box
        if r0 == r1 or c0 == c1:
            return
        points = self.ground_points[r0:r1, c0:c1].reshape(-1, 3)
        t = hit(int(looks.shapes[k]), points, self.light, xy, self.radius, float(looks.angles[k]))
        region = light[r0:r1, c0:c1]  # a view: writes go to `light`
        region[np.isfinite(t).reshape(region.shape)] = self.shadowed

    def _depth_test(
        self, looks: Looks, k: int, xy: np.ndarray, box: np.ndarray, depth: np.ndarray, ids: np.ndarray
    ) -> None:
        r0, r1, c0, c1 = box
        if r0 == r1 or c0 == c1:
            return
        rays = self.camera.rays[r0:r1, c0:c1].reshape(-1, 3)
        t = hit(int(looks.shapes[k]), self.camera.origin, rays, xy, self.radius, float(looks.angles[k]))
        t = t.reshape(r1 - r0, c1 - c0)
        region = depth[r0:r1, c0:c1]
        front = t < region  # nearer than the ground and every object drawn so far
        region[front] = t[front]
        ids[r0:r1, c0:c1][front] = k + 1

    def _shade(
        self,
        looks: Looks,
        k: int,
        xy: np.ndarray,
        box: np.ndarray,
        depth: np.ndarray,
        ids: np.ndarray,
        image: np.ndarray,
    ) -> None:
        r0, r1, c0, c1 = box
        if r0 == r1 or c0 == c1:
            return
        mine = ids[r0:r1, c0:c1] == k + 1
        if not mine.any():
            return
        rays = self.camera.rays[r0:r1, c0:c1][mine]  # (N, 3)
        points = self.camera.origin + depth[r0:r1, c0:c1][mine][:, None] * rays
        n = normals(int(looks.shapes[k]), points, xy, self.radius, float(looks.angles[k]))
        colour = shade(looks.albedo[k], bool(looks.metal[k]), n, rays, self.light, self.config.ambient)
        image[r0:r1, c0:c1][mine] = colour


def shade(
    albedo: np.ndarray, metal: bool, n: np.ndarray, rays: np.ndarray, light: np.ndarray, ambient: float
) -> np.ndarray:
    """Colours (N, 3) of surface points with normals ``n`` seen along ``rays``."""
    diffuse = np.clip(n @ light, 0, None)[:, None]  # (N, 1)
    sky = 0.75 + 0.25 * n[:, 2:3]  # surfaces facing up see more of the bright surroundings
    half = light - rays
    half /= np.linalg.norm(half, axis=1, keepdims=True)
    spec = np.clip((n * half).sum(axis=1), 0, None)[:, None]
    if not metal:
        return albedo * (ambient * sky + (1 - ambient) * diffuse) + 0.08 * spec**8
    reflected_z = rays[:, 2:3] - 2 * (rays * n).sum(axis=1, keepdims=True) * n[:, 2:3]
    environment = 0.35 + 0.55 * np.clip(reflected_z, 0, 1)  # grey floor below, bright above
    return albedo * (0.3 * ambient * sky + 0.45 * diffuse + 0.6 * environment) + 0.9 * spec**40
