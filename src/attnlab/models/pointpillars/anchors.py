"""Per-class anchors on the detection head's grid (PointPillars, arXiv:1812.05784, section 3).

The paper's KITTI anchors (width, length, height; z centre): Car (1.6, 3.9, 1.5) at z -1 m,
Pedestrian (0.6, 0.8, 1.73) and Cyclist (0.6, 1.76, 1.73) at z -0.6 m, each at two rotations
(0 and pi/2), one set per cell of the head's feature map, centred in the cell over the point
range. Boxes are LiDAR boxes ``(x, y, z, w, l, h, ry)`` with ``z`` the bottom face, as
:func:`attnlab.data.kitti.boxes_camera_to_lidar` gives them, so an anchor's bottom is its
z centre minus half its height.

Reference: zhulf0804/PointPillars ``model/anchors.py`` (the same sizes; it uses 1.56 m for the
car height as mmdet3d does and places the anchors' z values -0.6 / -1.78 as bottoms). Ours
keeps the paper's z centres; the regression target absorbs the offset either way.
Anchor order: ``(iy, ix, class, rotation)``, flattened, matching the head's channel layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from attnlab.errors import InputError


@dataclass(frozen=True)
class AnchorConfig:
    """Anchor shapes per class (w, l, h), their z centres and the rotations at each cell."""

    class_names: tuple[str, ...] = ("Car", "Pedestrian", "Cyclist")
    sizes: tuple[tuple[float, float, float], ...] = ((1.6, 3.9, 1.5), (0.6, 0.8, 1.73), (0.6, 1.76, 1.73))
    z_centres: tuple[float, ...] = (-1.0, -0.6, -0.6)
    rotations: tuple[float, ...] = (0.0, 1.5707963267948966)

    def __post_init__(self) -> None:
        n = len(self.class_names)
        if n == 0 or len(self.sizes) != n or len(self.z_centres) != n or not self.rotations:
            raise InputError(
                f"anchors need one size and one z centre per class ({n} classes, {len(self.sizes)} sizes, "
                f"{len(self.z_centres)} z centres) and at least one rotation"
            )

    @property
    def per_location(self) -> int:
        return len(self.class_names) * len(self.rotations)


def make_anchors(
    cfg: AnchorConfig, feature_hw: tuple[int, int], point_range: tuple[float, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchors (H * W * classes * rotations, 7) and each one's class index (same length)."""
    h, w = feature_hw
    x0, y0, x1, y1 = point_range[0], point_range[1], point_range[3], point_range[4]
    xs = x0 + (torch.arange(w, dtype=torch.float64) + 0.5) * (x1 - x0) / w
    ys = y0 + (torch.arange(h, dtype=torch.float64) + 0.5) * (y1 - y0) / h
    k, r = len(cfg.class_names), len(cfg.rotations)
    sizes = torch.tensor(cfg.sizes, dtype=torch.float64)  # (K, 3)
    bottoms = torch.tensor(cfg.z_centres, dtype=torch.float64) - sizes[:, 2] / 2  # (K,)
    rot = torch.tensor(cfg.rotations, dtype=torch.float64)  # (R,)
    shape = (h, w, k, r)
    anchors = torch.stack(
        [
            xs[None, :, None, None].expand(shape),
            ys[:, None, None, None].expand(shape),
            bottoms[None, None, :, None].expand(shape),
            sizes[None, None, :, None, 0].expand(shape),
            sizes[None, None, :, None, 1].expand(shape),
            sizes[None, None, :, None, 2].expand(shape),
            rot[None, None, None, :].expand(shape),
        ],
        -1,
    )  # (H, W, K, R, 7)
    classes = torch.arange(k)[None, None, :, None].expand(shape)
    return anchors.reshape(-1, 7).float(), classes.reshape(-1)
