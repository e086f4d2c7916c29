"""Point clouds coloured by attention: bird's-eye and perspective pictures (matplotlib), PLY files.

Colours run from blue (least attention) to red (most) through matplotlib's ``jet`` map, each map
min-max scaled on its own; the explained box is drawn over the points. From above
(:func:`plot_bev_attention`), or through a pinhole camera (:func:`plot_perspective_attention`):
by default a camera on the sensor's side of the box, behind and above it on the line from the
sensor, looking at the box's centre, so the faces the LiDAR saw face the viewer; points are drawn
far to near, each a dot whose size falls with its distance. The same functions take any
(N, >= 3) points with a value per point (a navigation agent's depth points too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from attnlab.data.kitti import lidar_box_corners
from attnlab.errors import ConfigError, InputError
from attnlab.files import atomic_write
from attnlab.layers.rotated_boxes import bev_box_corners

CMAP = "jet"  # blue -> red


def attention_colours(values: torch.Tensor) -> np.ndarray:
    """(N,) values -> (N, 3) uint8 RGB, min-max scaled, blue (low) to red (high)."""
    if values.dim() != 1:
        raise InputError(f"attention must be one value per point (N,), got {tuple(values.shape)}")
    v = values.detach().cpu().double()
    span = float(v.max() - v.min()) if len(v) else 0.0
    unit = (v - v.min()) / span if span > 0 else torch.zeros_like(v)
    rgba = matplotlib.colormaps[CMAP](unit.numpy())
    return (rgba[:, :3] * 255).round().astype(np.uint8)


def _check(points: torch.Tensor, values: torch.Tensor) -> None:
    if points.dim() != 2 or points.shape[1] < 3 or values.shape != points.shape[:1]:
        raise InputError(
            f"points must be (N, >= 3) with one value each, got points {tuple(points.shape)} "
            f"and values {tuple(values.shape)}"
        )


def _box_outline(ax: Axes, box: torch.Tensor, colour: str) -> None:
    quad = bev_box_corners(box[None, [0, 1, 3, 4, 6]].detach().cpu().float())[0]  # (4, 2)
    ring = torch.cat([quad, quad[:1]])
    ax.plot(ring[:, 0], ring[:, 1], color=colour, lw=1.2)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_bev_attention(
    clouds: Sequence[torch.Tensor],
    maps: Mapping[str, Sequence[torch.Tensor]],
    boxes: Sequence[torch.Tensor],
    path: Path,
    *,
    titles: Sequence[str] | None = None,
    margin: float = 6.0,
) -> Path:
    """A grid from above: one row per explained box (its (7,) box drawn in black over its (N, >= 3)
    cloud, the view ``margin`` metres around it), one column per method; ``maps[method][row]`` (N,)
    colours the points."""
    if not maps or not boxes or len(clouds) != len(boxes):
        raise InputError("plot_bev_attention needs at least one method and one cloud per box")
    rows, cols = len(boxes), len(maps)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.8 * rows), squeeze=False)
    for r, (points, box) in enumerate(zip(clouds, boxes, strict=True)):
        xy = points[:, :2].detach().cpu().float()
        cx, cy = float(box[0]), float(box[1])
        near = ((xy[:, 0] - cx).abs() < margin) & ((xy[:, 1] - cy).abs() < margin)
        for c, (method, per_box) in enumerate(maps.items()):
            values = per_box[r]
            _check(points, values)
            ax = axes[r, c]
            near_values = values.detach().cpu()[near]
            order = torch.argsort(near_values)  # the most attended drawn last, on top
            shown = xy[near][order]
            ax.scatter(shown[:, 0], shown[:, 1], s=2, c=attention_colours(near_values)[order.numpy()] / 255)
            _box_outline(ax, box, "black")
            ax.set(xlim=(cx - margin, cx + margin), ylim=(cy - margin, cy + margin), aspect="equal")
            ax.tick_params(labelsize=6)
            ax.set_title(method if titles is None else f"{method}\n{titles[r]}", fontsize=8)
    return _save(fig, path)


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: at ``eye`` looking at ``target``, ``up`` the world's up, a horizontal field
    of view of ``fov`` degrees over ``width`` x ``height`` pixels."""

    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fov: float = 60.0
    width: int = 400
    height: int = 300

    def rotation(self) -> np.ndarray:
        """(3, 3) rows: the image's right, its down, the viewing direction (world coordinates)."""
        eye, target, up = (np.asarray(v, dtype=np.float64) for v in (self.eye, self.target, self.up))
        forward = target - eye
        right = np.cross(forward, up)
        if np.linalg.norm(forward) == 0 or np.linalg.norm(right) == 0:
            raise InputError(
                f"camera at {self.eye} looking at {self.target}: no direction or looking along up"
            )
        forward /= np.linalg.norm(forward)
        right /= np.linalg.norm(right)
        return np.stack([right, np.cross(forward, right), forward])

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) world points -> (N, 2) pixel (u right, v down; the centre at the image's middle)
        and (N,) depth along the viewing direction (<= 0: behind the camera)."""
        cam = (points[:, :3] - np.asarray(self.eye)) @ self.rotation().T  # (N, 3) right, down, forward
        depth = cam[:, 2]
        focal = self.width / 2 / np.tan(np.radians(self.fov) / 2)
        safe = np.where(depth > 1e-6, depth, 1.0)
        uv = focal * cam[:, :2] / safe[:, None] + np.array([self.width / 2, self.height / 2])
        return uv, depth


def chase_camera(box: torch.Tensor, *, back: float = 6.0, above: float = 3.0, fov: float = 60.0) -> Camera:
    """A camera ``back`` metres behind the (7,) box's centre on the line from the sensor (the origin)
    and ``above`` metres higher, looking at the centre: the side the LiDAR saw faces the viewer."""
    x, y, z, _, _, h = (float(v) for v in box[:6])
    centre = np.array([x, y, z + h / 2])
    away = centre[:2] / max(float(np.hypot(x, y)), 1e-6)  # from the sensor towards the box
    eye = centre + np.array([-away[0] * back, -away[1] * back, above])
    return Camera(tuple(eye.tolist()), tuple(centre.tolist()), fov=fov)


def plot_perspective_attention(
    clouds: Sequence[torch.Tensor],
    maps: Mapping[str, Sequence[torch.Tensor]],
    boxes: Sequence[torch.Tensor],
    path: Path,
    *,
    titles: Sequence[str] | None = None,
    cameras: Sequence[Camera] | None = None,
    max_depth: float = 40.0,
) -> Path:
    """The grid of :func:`plot_bev_attention` through a camera per row (``cameras``, by default
    :func:`chase_camera` of each box): points within ``max_depth`` metres in front of it, the box's
    12 edges in black."""
    if not maps or not boxes or len(clouds) != len(boxes):
        raise InputError("plot_perspective_attention needs at least one method and one cloud per box")
    views = list(cameras) if cameras is not None else [chase_camera(box) for box in boxes]
    if len(views) != len(boxes):
        raise InputError(f"{len(views)} cameras for {len(boxes)} boxes")
    rows, cols = len(boxes), len(maps)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False)
    for r, (points, box, camera) in enumerate(zip(clouds, boxes, views, strict=True)):
        uv, depth = camera.project(points.detach().cpu().double().numpy())
        seen = (depth > 0.1) & (depth < max_depth)
        seen &= (uv[:, 0] >= 0) & (uv[:, 0] < camera.width) & (uv[:, 1] >= 0) & (uv[:, 1] < camera.height)
        order = np.flatnonzero(seen)[np.argsort(-depth[seen])]  # far first: near points on top
        edges = _box_edges(box, camera)
        for c, (method, per_box) in enumerate(maps.items()):
            values = per_box[r]
            _check(points, values)
            ax = axes[r, c]
            colours = attention_colours(values.detach().cpu()[torch.from_numpy(order)]) / 255
            ax.scatter(
                uv[order, 0], uv[order, 1], s=np.clip(60 / depth[order], 0.3, 8), c=colours, linewidths=0
            )
            for a, b in edges:
                ax.plot([a[0], b[0]], [a[1], b[1]], color="black", lw=1.0)
            ax.set(xlim=(0, camera.width), ylim=(camera.height, 0), aspect="equal", xticks=[], yticks=[])
            ax.set_title(method if titles is None else f"{method}\n{titles[r]}", fontsize=8)
    return _save(fig, path)


def render_points(
    points: np.ndarray, colours: np.ndarray, camera: Camera, *, dot: int = 2, background: int = 255
) -> np.ndarray:
    """(N, >= 3) points in (N, 3) uint8 ``colours`` through ``camera`` -> (height, width, 3) uint8:
    each point a ``dot`` x ``dot`` square at its pixel, nearer points over farther ones, points
    behind the camera left out. For frames of a video (no matplotlib)."""
    if points.ndim != 2 or points.shape[1] < 3 or colours.shape != (len(points), 3):
        raise InputError(
            f"points must be (N, >= 3) with (N, 3) colours, got {points.shape} and {colours.shape}"
        )
    uv, depth = camera.project(points)
    ahead = depth > 0.05
    offsets = np.stack(np.meshgrid(np.arange(dot), np.arange(dot)), -1).reshape(-1, 2)  # (dot^2, 2)
    pixel = (np.floor(uv[ahead]).astype(np.int64)[:, None] + offsets).reshape(-1, 2)  # (M dot^2, 2) col, row
    near_first = np.argsort(np.repeat(depth[ahead], len(offsets)), kind="stable")
    pixel, shown = pixel[near_first], np.repeat(colours[ahead], len(offsets), axis=0)[near_first]
    inside = (
        (pixel[:, 0] >= 0) & (pixel[:, 0] < camera.width) & (pixel[:, 1] >= 0) & (pixel[:, 1] < camera.height)
    )
    pixel, shown = pixel[inside], shown[inside]
    _, nearest = np.unique(pixel[:, 1] * camera.width + pixel[:, 0], return_index=True)  # first: nearest
    image = np.full((camera.height, camera.width, 3), background, dtype=np.uint8)
    image[pixel[nearest, 1], pixel[nearest, 0]] = shown[nearest]
    return image


_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7))


def _box_edges(box: torch.Tensor, camera: Camera) -> list[tuple[np.ndarray, np.ndarray]]:
    """The box's edges in pixels, those with both ends in front of the camera."""
    corners = lidar_box_corners(box.detach().cpu().double().numpy()[None, :7])[0]  # (8, 3)
    uv, depth = camera.project(corners)
    return [(uv[i], uv[j]) for i, j in _EDGES if depth[i] > 0.1 and depth[j] > 0.1]


def write_ply(path: Path, points: torch.Tensor, values: torch.Tensor) -> Path:
    """A binary PLY of the points: x y z, red green blue (blue -> red by ``values``), attention."""
    _check(points, values)
    try:
        from plyfile import PlyData, PlyElement
    except ModuleNotFoundError as exc:
        raise ConfigError(
            "writing PLY files needs the 'points' extra (no module 'plyfile'): pip install 'attnlab[points]'"
        ) from exc
    xyz = points[:, :3].detach().cpu().float().numpy()
    rgb = attention_colours(values)
    vertex = np.empty(
        len(xyz),
        dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1"),
               ("attention", "f4")],
    )  # fmt: skip
    for i, axis in enumerate("xyz"):
        vertex[axis] = xyz[:, i]
    for i, channel in enumerate(("red", "green", "blue")):
        vertex[channel] = rgb[:, i]
    vertex["attention"] = values.detach().cpu().float().numpy()
    ply = PlyData([PlyElement.describe(vertex, "vertex")])
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, ply.write)
    return path
