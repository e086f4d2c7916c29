"""Point clouds coloured by attention: bird's-eye-view pictures (matplotlib) and PLY files (plyfile).

Colours run from blue (least attention) to red (most) through matplotlib's ``jet`` map, each map
min-max scaled on its own; the explained box is drawn over the points from above. The same
functions take any (N, >= 3) points with a value per point (a navigation agent's depth points too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes

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
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


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
