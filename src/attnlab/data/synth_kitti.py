"""Synthetic LiDAR scenes written in KITTI's on-disk format, so the KITTI pipeline runs without a download.

A scene is a flat ground plane with cars, pedestrians and cyclists of KITTI's mean sizes (with
spread), headings along the road or random, and clutter: walls along the road, poles and
vegetation (porous spheres that let some rays through). Points come from casting the rays of a
64-beam spinning sensor (HDL-64E-like: elevations +2 to -24.8 degrees, mounted 1.73 m above the
ground, 360 degrees of azimuth) against every primitive and keeping the nearest hit, so near
objects occlude far ones; then Gaussian range noise and dropout that grows with range. Cars are
a body and a cabin (two boxes) inside their labelled box; pedestrians and cyclists are boxes.

The labels are KITTI's: objects whose box lies in front of the camera and projects into the
1242 x 375 image of ``P2`` get a ``label_2`` line (camera frame, ``h w l``, ``rotation_y``,
``alpha``, the 2-D box of the projected corners clipped to the image) with

- truncation: the share of the projected box's area outside the image (KITTI: "the fraction of
  the object leaving the image boundaries"), 2 decimals;
- occlusion: from the rays that meet the object's primitives: 0 when at least 80% of them see it
  first, 1 at least 40%, 2 below, 3 when no ray meets it (unknown);
- objects with fewer than ``min_points`` points in their box become ``DontCare`` regions, as
  KITTI marks objects too far or unclear to label.

Everything is numpy, vectorised over the rays of each primitive's azimuth span; scene ``i`` of a
seed is a pure function of ``(seed, i)``.

Optionally (``write_synth_kitti(..., images=True)``) each frame gets an ``image_2`` PNG: there is
no camera simulation, so it is the LiDAR points seen by camera 2 (:func:`camera_image`), each
pixel coloured by the depth of its nearest point, the way LiDAR is usually drawn over KITTI's
images; the reader takes the image's size from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attnlab.data.kitti import Calibration, format_calib, format_label_lines, write_points
from attnlab.errors import ConfigError
from attnlab.metrics.kitti_objects import KittiObjects

GROUND = -1
NO_HIT = -2
# KITTI's mean sizes (l, w, h) in metres and a spread for each.
SIZES = {
    "Car": ((3.88, 1.63, 1.53), (0.35, 0.10, 0.12)),
    "Pedestrian": ((0.84, 0.66, 1.76), (0.15, 0.10, 0.10)),
    "Cyclist": ((1.76, 0.60, 1.73), (0.15, 0.06, 0.08)),
}


@dataclass(frozen=True)
class LidarConfig:
    """A spinning multi-beam sensor (defaults: Velodyne HDL-64E as mounted on KITTI's car)."""

    num_beams: int = 64
    elevation_deg: tuple[float, float] = (2.0, -24.8)  # top and bottom beam
    azimuth_step_deg: float = 0.2  # 1800 columns per turn
    height: float = 1.73  # above the ground
    max_range: float = 120.0
    range_noise: float = 0.02  # metres, standard deviation
    dropout: float = 0.03  # probability of no return at any range
    far_dropout: float = 0.3  # extra probability at max_range, growing as (range / max_range)^2


@dataclass(frozen=True)
class SceneConfig:
    """What a scene holds: counts are inclusive (low, high) ranges drawn per scene."""

    cars: tuple[int, int] = (2, 10)
    pedestrians: tuple[int, int] = (0, 6)
    cyclists: tuple[int, int] = (0, 4)
    walls: tuple[int, int] = (0, 3)
    poles: tuple[int, int] = (2, 12)
    bushes: tuple[int, int] = (2, 15)
    # Where the labelled classes stand (LiDAR x, metres ahead); |y| is drawn up to
    # min(y_max, 0.85 x + 3), a wedge a little wider than the camera's 80 degrees, so most
    # objects are in the image and some beside it (in the cloud, unlabelled, as in KITTI).
    x_range: tuple[float, float] = (3.0, 55.0)
    y_max: float = 35.0
    min_points: int = 5  # fewer points in the box: a DontCare region
    image_hw: tuple[int, int] = (375, 1242)
    lidar: LidarConfig = field(default_factory=LidarConfig)

    def __post_init__(self) -> None:
        for name in ("cars", "pedestrians", "cyclists", "walls", "poles", "bushes"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ConfigError(f"synth-kitti {name} must be a range 0 <= low <= high, got ({low}, {high})")
        if self.x_range[0] < 2.0 or self.x_range[0] >= self.x_range[1]:
            raise ConfigError("synth-kitti x_range must start at >= 2 m (clear of the sensor) and increase")


def default_calibration() -> Calibration:
    """A KITTI-like rig: camera 0.27 m ahead of and 0.08 m below the LiDAR, axes x->z, y->-x, z->-y.

    ``P2`` has KITTI's focal length and principal point (721.54 px, (609.56, 172.85)) and the
    colour camera's 0.06 m baseline offset; ``R0_rect`` is the identity.
    """
    focal, cx, cy = 721.5377, 609.5593, 172.854
    P = np.zeros((4, 4, 4))
    for i, tx in enumerate((0.0, -0.54, 0.06, -0.47)):  # grey left/right, colour left/right
        P[i] = np.array([[focal, 0, cx, focal * tx], [0, focal, cy, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    velo_to_cam = np.eye(4)
    velo_to_cam[:3, :3] = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]], dtype=np.float64)
    velo_to_cam[:3, 3] = (0.0, -0.08, -0.27)
    return Calibration(P=P, R0_rect=np.eye(4), Tr_velo_to_cam=velo_to_cam, Tr_imu_to_velo=np.eye(4))


@dataclass
class Primitives:
    """What rays can hit (LiDAR frame, z up, ground at ``-height``); ``owner`` says whose it is."""

    boxes: np.ndarray  # (K, 7) cx, cy, z_bottom, length, width, height, yaw (length along yaw)
    box_owner: np.ndarray  # (K,) int: labelled object index, or >= 1000 for clutter
    box_albedo: np.ndarray  # (K,)
    poles: np.ndarray  # (P, 5) cx, cy, z_bottom, radius, height
    bushes: np.ndarray  # (S, 5) cx, cy, cz, radius, porosity


def beam_directions(lidar: LidarConfig) -> np.ndarray:
    """(B, A, 3) unit ray directions: beam-major, azimuth from -pi in steps."""
    elev = np.radians(np.linspace(lidar.elevation_deg[0], lidar.elevation_deg[1], lidar.num_beams))
    num_az = round(360.0 / lidar.azimuth_step_deg)
    az = -math.pi + np.arange(num_az) * (2 * math.pi / num_az)
    ce = np.cos(elev)[:, None]
    return np.stack(
        [
            ce * np.cos(az)[None],
            ce * np.sin(az)[None],
            np.broadcast_to(np.sin(elev)[:, None], (len(elev), num_az)),
        ],
        -1,
    )


def _columns(center_az: float, half_span: float, num_az: int) -> np.ndarray:
    """Azimuth column indices within ``center_az +- half_span`` (wrapping at +-pi)."""
    step = 2 * math.pi / num_az
    lo = math.floor((center_az - half_span + math.pi) / step)
    hi = math.ceil((center_az + half_span + math.pi) / step)
    return np.arange(lo, hi + 1) % num_az


def _box_hits(dirs: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Distances along (..., 3) unit rays from the origin to a box (inf where missed)."""
    cx, cy, zb, length, width, height, yaw = box
    c, s = math.cos(yaw), math.sin(yaw)
    # Into the box's frame: rotate by -yaw about z; the ray origin is the sensor (0, 0, 0).
    d = np.stack(
        [c * dirs[..., 0] + s * dirs[..., 1], -s * dirs[..., 0] + c * dirs[..., 1], dirs[..., 2]], -1
    )
    o = np.array([-(c * cx + s * cy), -(-s * cx + c * cy), -(zb + height / 2)])
    half = np.array([length / 2, width / 2, height / 2])
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (-half - o) / d
        t2 = (half - o) / d
    near = np.minimum(t1, t2).max(-1)
    far = np.maximum(t1, t2).min(-1)
    return np.where((near <= far) & (near > 0), near, np.inf)


def _pole_hits(dirs: np.ndarray, pole: np.ndarray) -> np.ndarray:
    cx, cy, zb, radius, height = pole
    a = dirs[..., 0] ** 2 + dirs[..., 1] ** 2
    b = -2 * (cx * dirs[..., 0] + cy * dirs[..., 1])
    disc = b * b - 4 * a * (cx * cx + cy * cy - radius * radius)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (-b - np.sqrt(disc)) / (2 * a)
    z = t * dirs[..., 2]
    return np.where((disc >= 0) & (t > 0) & (z >= zb) & (z <= zb + height), t, np.inf)


def _bush_hits(dirs: np.ndarray, bush: np.ndarray) -> np.ndarray:
    center, radius = bush[:3], bush[3]
    along = dirs @ center
    disc = along**2 - (center @ center - radius * radius)
    with np.errstate(invalid="ignore"):
        t = along - np.sqrt(disc)
    return np.where((disc >= 0) & (t > 0), t, np.inf)


@dataclass
class CastResult:
    distance: np.ndarray  # (B, A) nearest hit, inf where none
    owner: np.ndarray  # (B, A) labelled object index, >= 1000 clutter, GROUND, NO_HIT
    albedo: np.ndarray  # (B, A)
    rays_on_object: np.ndarray  # (M,) rays meeting each labelled object's primitives, occluded or not


def cast_rays(
    lidar: LidarConfig, prims: Primitives, num_objects: int, rng: np.random.Generator
) -> CastResult:
    """Nearest hit of every ray against the ground and every primitive."""
    dirs = beam_directions(lidar)  # (B, A, 3)
    num_az = dirs.shape[1]
    with np.errstate(divide="ignore"):
        ground = np.where(dirs[..., 2] < 0, -lidar.height / dirs[..., 2], np.inf)
    best = ground.copy()
    owner = np.where(np.isfinite(ground), GROUND, NO_HIT)
    albedo = np.full(best.shape, 0.25)
    rays_on_object = np.zeros(num_objects, dtype=np.int64)

    def update(cols: np.ndarray, t: np.ndarray, who: int, value: float) -> None:
        sub = best[:, cols]
        closer = t < sub
        best[:, cols] = np.where(closer, t, sub)
        owner[:, cols] = np.where(closer, who, owner[:, cols])
        albedo[:, cols] = np.where(closer, value, albedo[:, cols])
        if 0 <= who < num_objects:
            rays_on_object[who] += int(np.isfinite(t).sum())

    for box, who, value in zip(prims.boxes, prims.box_owner, prims.box_albedo, strict=True):
        radius = math.hypot(box[3], box[4]) / 2
        dist = math.hypot(box[0], box[1])
        cols = _columns(math.atan2(box[1], box[0]), math.asin(min(1.0, radius / dist)), num_az)
        update(cols, _box_hits(dirs[:, cols], box), int(who), float(value))
    for i, pole in enumerate(prims.poles):
        dist = math.hypot(pole[0], pole[1])
        cols = _columns(math.atan2(pole[1], pole[0]), math.asin(min(1.0, pole[3] / dist)), num_az)
        update(cols, _pole_hits(dirs[:, cols], pole), 2000 + i, 0.55)
    for i, bush in enumerate(prims.bushes):
        dist = math.hypot(bush[0], bush[1])
        cols = _columns(math.atan2(bush[1], bush[0]), math.asin(min(1.0, bush[3] / dist)), num_az)
        t = _bush_hits(dirs[:, cols], bush)
        t = np.where(rng.random(t.shape) < bush[4], np.inf, t)  # leaves let some rays through
        update(cols, t, 3000 + i, 0.35)
    return CastResult(distance=best, owner=owner, albedo=albedo, rays_on_object=rays_on_object)


@dataclass
class Scene:
    """One generated frame: points, labels and calibration as KITTI stores them."""

    points: np.ndarray  # (N, 4) float32 x y z reflectance (LiDAR frame)
    objects: KittiObjects  # labels (camera frame), DontCare regions included
    calib: Calibration
    lidar_boxes: np.ndarray  # (M, 7) every placed object: cx, cy, z_bottom, l, w, h, yaw
    classes: list[str]  # (M,) the class of each placed object


def _place(rng: np.random.Generator, cfg: SceneConfig) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Objects and walls with non-overlapping footprints: boxes (M, 7), classes, walls (W, 7)."""
    ground = -cfg.lidar.height
    footprints: list[tuple[float, float, float]] = []  # x, y, radius: a conservative disc each
    walls = []
    for _ in range(rng.integers(cfg.walls[0], cfg.walls[1] + 1)):
        side = rng.choice([-1.0, 1.0])
        length = rng.uniform(10, 40)
        x0 = rng.uniform(-30, 50)
        y = side * rng.uniform(9, 30)
        walls.append([x0 + length / 2, y, ground, length, 0.3, rng.uniform(2, 4), rng.normal(0, 0.05)])
    wall_arr = np.array(walls, dtype=np.float64).reshape(-1, 7)

    def clear_of_walls(x: float, y: float, r: float) -> bool:
        # Walls lie almost along x: test the disc against the wall's band, generously.
        return not np.any(
            (np.abs(wall_arr[:, 0] - x) < wall_arr[:, 3] / 2 + r)
            & (np.abs(wall_arr[:, 1] - y) < 0.15 + r + 0.3)
        )

    boxes, classes = [], []
    for cls, (low, high) in (("Car", cfg.cars), ("Pedestrian", cfg.pedestrians), ("Cyclist", cfg.cyclists)):
        mean, spread = SIZES[cls]
        for _ in range(rng.integers(low, high + 1)):
            size = np.maximum(np.asarray(mean) + rng.normal(0, 1, 3) * spread, 0.3)
            radius = math.hypot(size[0], size[1]) / 2
            for _try in range(20):
                x = rng.uniform(*cfg.x_range)
                half = min(cfg.y_max, 0.85 * x + 3.0)
                y = rng.uniform(-half, half)
                if all(math.hypot(x - fx, y - fy) > radius + fr + 0.3 for fx, fy, fr in footprints) and (
                    clear_of_walls(x, y, radius)
                ):
                    break
            else:
                continue  # no room: fewer objects this scene
            if cls == "Pedestrian" or rng.random() < 0.2:
                yaw = rng.uniform(-math.pi, math.pi)
            else:  # along the road, either way
                yaw = rng.choice([0.0, math.pi]) + rng.normal(0, 0.15)
            footprints.append((x, y, radius))
            boxes.append([x, y, ground, size[0], size[1], size[2], yaw])
            classes.append(cls)
    return np.array(boxes, dtype=np.float64).reshape(-1, 7), classes, wall_arr


def _object_primitives(
    boxes: np.ndarray, classes: list[str], rng: np.random.Generator
) -> tuple[list[list[float]], list[int], list[float]]:
    """The boxes rays can hit for each object, their owners (object index) and albedos."""
    prims: list[list[float]] = []
    owners: list[int] = []
    albedos: list[float] = []
    for i, (box, cls) in enumerate(zip(boxes, classes, strict=True)):
        cx, cy, zb, length, width, height, yaw = box
        paint = float(rng.uniform(0.05, 0.6))
        if cls == "Car":  # body (lower 55%) and a shorter cabin on top, both inside the label
            body = 0.55 * height
            prims.append([cx, cy, zb + 0.15, length, width, body - 0.15, yaw])
            shift = rng.uniform(-0.1, 0.05) * length
            cabin = (cx + shift * math.cos(yaw), cy + shift * math.sin(yaw))
            prims.append([*cabin, zb + body, 0.55 * length, 0.9 * width, height - body, yaw])
            owners += [i, i]
            albedos += [paint, 0.1]  # windows return weakly
        else:
            prims.append(list(box))
            owners.append(i)
            albedos.append(float(rng.uniform(0.15, 0.45)))
    return prims, owners, albedos


def _clutter(rng: np.random.Generator, cfg: SceneConfig, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ground = -cfg.lidar.height

    def free(x: float, y: float, r: float) -> bool:
        if math.hypot(x, y) < r + 2.0:
            return False
        d = np.hypot(boxes[:, 0] - x, boxes[:, 1] - y)
        return bool(np.all(d > np.hypot(boxes[:, 3], boxes[:, 4]) / 2 + r + 0.2))

    poles, bushes = [], []
    for _ in range(rng.integers(cfg.poles[0], cfg.poles[1] + 1)):
        x, y, r = rng.uniform(-40, 70), rng.choice([-1.0, 1.0]) * rng.uniform(5, 30), rng.uniform(0.08, 0.2)
        if free(x, y, r):
            poles.append([x, y, ground, r, rng.uniform(3, 8)])
    for _ in range(rng.integers(cfg.bushes[0], cfg.bushes[1] + 1)):
        x, y, r = rng.uniform(-40, 70), rng.choice([-1.0, 1.0]) * rng.uniform(6, 35), rng.uniform(0.5, 2.5)
        if free(x, y, r):
            bushes.append([x, y, ground + r * rng.uniform(0.6, 2.0), r, rng.uniform(0.1, 0.5)])
    return np.array(poles, dtype=np.float64).reshape(-1, 5), np.array(bushes, dtype=np.float64).reshape(-1, 5)


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """(M, 7) generator boxes -> (M, 8, 3) corners in the LiDAR frame."""
    sx = np.array([-1, 1, 1, -1, -1, 1, 1, -1]) / 2
    sy = np.array([-1, -1, 1, 1, -1, -1, 1, 1]) / 2
    sz = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    lx = sx[None] * boxes[:, 3:4]
    ly = sy[None] * boxes[:, 4:5]
    c, s = np.cos(boxes[:, 6:7]), np.sin(boxes[:, 6:7])
    x = boxes[:, 0:1] + c * lx - s * ly
    y = boxes[:, 1:2] + s * lx + c * ly
    z = boxes[:, 2:3] + sz[None] * boxes[:, 5:6]
    return np.stack([x, y, z], -1)


def _points_in(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(M,) points inside each generator box."""
    rel = points[None, :, :3] - boxes[:, None, :3]  # (M, N, 3)
    c, s = np.cos(boxes[:, 6])[:, None], np.sin(boxes[:, 6])[:, None]
    u = c * rel[..., 0] + s * rel[..., 1]
    v = -s * rel[..., 0] + c * rel[..., 1]
    inside = (
        (np.abs(u) <= boxes[:, 3:4] / 2)
        & (np.abs(v) <= boxes[:, 4:5] / 2)
        & (rel[..., 2] >= 0)
        & (rel[..., 2] <= boxes[:, 5:6])
    )
    return inside.sum(1)


def _labels(
    boxes: np.ndarray,
    classes: list[str],
    counts: np.ndarray,
    occlusion: np.ndarray,
    calib: Calibration,
    cfg: SceneConfig,
) -> KittiObjects:
    """KITTI label lines for the objects that project into the image."""
    height, width = cfg.image_hw
    rows = []
    for i, box in enumerate(boxes):
        corners = calib.lidar_to_camera(box_corners(box[None])[0])  # (8, 3)
        if corners[:, 2].min() < 0.5:
            continue  # behind or beside the camera: KITTI labels only what the image shows
        pix = calib.camera_to_image(corners)
        raw = np.concatenate([pix.min(0), pix.max(0)])
        clipped = np.clip(raw, 0, [width, height, width, height])
        raw_area = (raw[2] - raw[0]) * (raw[3] - raw[1])
        area = max(clipped[2] - clipped[0], 0.0) * max(clipped[3] - clipped[1], 0.0)
        if area <= 0:
            continue
        bottom = calib.lidar_to_camera(box[None, :3])[0]
        ry = float((-box[6] - math.pi / 2 + math.pi) % (2 * math.pi) - math.pi)
        alpha = float((ry - math.atan2(bottom[0], bottom[2]) + math.pi) % (2 * math.pi) - math.pi)
        rows.append(
            dict(
                name=classes[i] if counts[i] >= cfg.min_points else "DontCare",
                truncated=round(1.0 - area / raw_area, 2),
                occluded=int(occlusion[i]),
                alpha=alpha,
                bbox=clipped,
                dimensions=box[[3, 5, 4]],  # l h w
                location=bottom,
                rotation_y=ry,
            )
        )
    objs = KittiObjects.empty()
    if rows:
        objs = KittiObjects(
            name=np.array([r["name"] for r in rows]),
            truncated=np.array([r["truncated"] for r in rows], dtype=np.float64),
            occluded=np.array([r["occluded"] for r in rows], dtype=np.int64),
            alpha=np.array([r["alpha"] for r in rows], dtype=np.float64),
            bbox=np.stack([r["bbox"] for r in rows]),
            dimensions=np.stack([r["dimensions"] for r in rows]),
            location=np.stack([r["location"] for r in rows]),
            rotation_y=np.array([r["rotation_y"] for r in rows], dtype=np.float64),
            score=np.zeros(len(rows)),
        )
    dc = objs.name == "DontCare"
    # KITTI's DontCare lines carry only the 2-D box; the rest is -1 / -10 / -1000.
    objs.truncated[dc], objs.occluded[dc], objs.alpha[dc] = -1, -1, -10
    objs.dimensions[dc], objs.location[dc], objs.rotation_y[dc] = -1, -1000, -10
    return objs


def generate_scene(seed: int, index: int, cfg: SceneConfig | None = None) -> Scene:
    """Scene ``index`` of ``seed``: a pure function of both."""
    cfg = cfg or SceneConfig()
    rng = np.random.default_rng([seed, index])
    boxes, classes, walls = _place(rng, cfg)
    obj_prims, owners, albedos = _object_primitives(boxes, classes, rng)
    wall_list = [list(w) for w in walls]
    poles, bushes = _clutter(rng, cfg, np.concatenate([boxes, walls]))
    prims = Primitives(
        boxes=np.array(obj_prims + wall_list, dtype=np.float64).reshape(-1, 7),
        box_owner=np.array(owners + [1000 + i for i in range(len(walls))], dtype=np.int64),
        box_albedo=np.array(albedos + list(rng.uniform(0.25, 0.5, len(walls))), dtype=np.float64),
        poles=poles,
        bushes=bushes,
    )
    lidar = cfg.lidar
    cast = cast_rays(lidar, prims, len(boxes), rng)
    dirs = beam_directions(lidar)
    visible = np.bincount(cast.owner[(cast.owner >= 0) & (cast.owner < len(boxes))], minlength=len(boxes))
    share = np.divide(visible, cast.rays_on_object, out=np.zeros(len(boxes)), where=cast.rays_on_object > 0)
    occlusion = np.where(cast.rays_on_object == 0, 3, np.where(share >= 0.8, 0, np.where(share >= 0.4, 1, 2)))

    dist = cast.distance + rng.normal(0, lidar.range_noise, cast.distance.shape)
    drop = rng.random(dist.shape) < lidar.dropout + lidar.far_dropout * (cast.distance / lidar.max_range) ** 2
    keep = np.isfinite(cast.distance) & (cast.distance <= lidar.max_range) & ~drop
    xyz = dirs[keep] * dist[keep][:, None]  # (N, 3)
    # Reflectance: the surface's albedo, dimmer at grazing incidence on the ground, with noise.
    grazing = np.where(cast.owner[keep] == GROUND, np.abs(dirs[keep][:, 2]) ** 0.5, 1.0)
    refl = np.clip(cast.albedo[keep] * grazing + rng.normal(0, 0.03, len(xyz)), 0.0, 0.99)
    points = np.concatenate([xyz, refl[:, None]], 1).astype(np.float32)

    calib = default_calibration()
    counts = _points_in(points, boxes) if len(boxes) else np.zeros(0, dtype=np.int64)
    objects = _labels(boxes, classes, counts, occlusion, calib, cfg)
    return Scene(points=points, objects=objects, calib=calib, lidar_boxes=boxes, classes=classes)


def camera_image(
    scene: Scene, image_hw: tuple[int, int] = (375, 1242), max_depth: float = 80.0
) -> np.ndarray:
    """(H, W, 3) uint8: the scene's points in camera 2 (``P2``), each pixel coloured by the depth of
    its nearest point (matplotlib's ``turbo``: red near, blue at ``max_depth`` and beyond), black
    where no point falls."""
    from matplotlib import colormaps

    height, width = image_hw
    cam = scene.calib.lidar_to_camera(scene.points[:, :3])  # (N, 3) rectified camera frame
    ahead = cam[:, 2] > 0.5
    uv = np.floor(scene.calib.camera_to_image(cam[ahead])).astype(np.int64)  # (M, 2) pixel columns, rows
    depth = cam[ahead, 2]
    shown = (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)
    uv, depth = uv[shown], depth[shown]
    near_first = np.argsort(depth, kind="stable")
    _, first = np.unique(uv[near_first, 1] * width + uv[near_first, 0], return_index=True)
    nearest = near_first[first]  # each lit pixel's nearest point
    image = np.zeros((height, width, 3), dtype=np.uint8)
    colours = colormaps["turbo"](1.0 - np.clip(depth[nearest] / max_depth, 0.0, 1.0))[:, :3]
    image[uv[nearest, 1], uv[nearest, 0]] = (colours * 255).round().astype(np.uint8)
    return image


def write_synth_kitti(
    root: str | Path,
    num_frames: int,
    seed: int = 0,
    cfg: SceneConfig | None = None,
    val_fraction: float = 0.5,
    images: bool = False,
) -> list[str]:
    """Write ``num_frames`` scenes under ``root/training`` and ``root/ImageSets``; return the ids.

    The first ``1 - val_fraction`` of the frames form ``train.txt``, the rest ``val.txt``
    (``trainval.txt`` holds all). ``images``: also ``image_2`` PNGs (:func:`camera_image`).
    """
    if num_frames < 1 or not 0.0 <= val_fraction <= 1.0:
        raise ConfigError("write_synth_kitti needs num_frames >= 1 and 0 <= val_fraction <= 1")
    root = Path(root)
    base = root / "training"
    for sub in ("velodyne", "label_2", "calib", *(("image_2",) if images else ())):
        (base / sub).mkdir(parents=True, exist_ok=True)
    ids = [f"{i:06d}" for i in range(num_frames)]
    for i, frame_id in enumerate(ids):
        scene = generate_scene(seed, i, cfg)
        write_points(base / "velodyne" / f"{frame_id}.bin", scene.points)
        (base / "label_2" / f"{frame_id}.txt").write_text(
            "".join(f"{line}\n" for line in format_label_lines(scene.objects))
        )
        (base / "calib" / f"{frame_id}.txt").write_text(format_calib(scene.calib))
        if images:
            from PIL import Image

            Image.fromarray(camera_image(scene, (cfg or SceneConfig()).image_hw)).save(
                base / "image_2" / f"{frame_id}.png"
            )
    num_train = round(num_frames * (1.0 - val_fraction))
    sets = root / "ImageSets"
    sets.mkdir(exist_ok=True)
    for name, part in (("train", ids[:num_train]), ("val", ids[num_train:]), ("trainval", ids)):
        (sets / f"{name}.txt").write_text("".join(f"{i}\n" for i in part))
    return ids
