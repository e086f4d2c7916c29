"""Pictures of a navigation agent's view: its semantic classes in the simulator's colours, and the
depth view as points on the floor plan, coloured by class or by an action query's attention."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from attnlab.explorer.pictures import png_url
from attnlab.models.rl.nav_obs import PALETTE

if TYPE_CHECKING:  # the rl extra is imported only once an agent is loaded
    from attnlab.rl.navigation import NavConfig

CLOUD_SIZE = 168  # pixels a side of the depth points seen from above
CLOUD_BACKGROUND = 96  # mid grey: the heat colours' dark and bright ends both show on it
HEAT = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float64)


def rgb_png(rgb: np.ndarray) -> str:
    """An (H, W, 3) uint8 picture as a PNG data URL in its own colours (not stretched)."""
    return png_url(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1), (0.0, 255.0))


def semantic_view(nav: NavConfig, x: torch.Tensor) -> np.ndarray:
    """The navigation observation's class ids as the simulator colours them (H, W, 3) uint8."""
    size = nav.size
    ids = x[: size * size].round().long().clamp(0, len(PALETTE) - 1).view(size, size).numpy()
    return np.asarray(PALETTE, dtype=np.uint8)[ids]


def depth_cloud(
    nav: NavConfig, x: torch.Tensor, depth: torch.Tensor, weights: torch.Tensor | None
) -> np.ndarray:
    """The view's pixels as points on the floor plan (CLOUD_SIZE, CLOUD_SIZE, 3) uint8: each pixel
    back-projected by its depth through the pinhole camera, the ceiling left out; coloured by
    ``weights`` (K,) over the patch grid (the higher drawn last), or by class."""
    size = nav.size
    ids = x[: size * size].round().long().view(size, size).numpy()
    z = depth.double().numpy()  # (H, W) metres along the viewing axis
    focal = (size / 2) / math.tan(math.radians(nav.fov_deg) / 2)
    across = z * (np.arange(size) + 0.5 - size / 2) / focal  # (H, W) metres right of the heading
    keep = ids != 0  # the ceiling (class 0) hangs over everything
    far = max(1e-3, min(float(z[keep].max()) if keep.any() else 1.0, 1.5 * nav.map_size))
    side = math.isqrt(weights.numel()) if weights is not None else 0
    if weights is not None and size % side == 0:
        grid = weights.view(side, side).double().numpy()
        pixel = np.kron(grid, np.ones((size // side, size // side)))  # (H, W): each pixel its patch's
        pixel = (pixel - pixel.min()) / max(pixel.max() - pixel.min(), 1e-12)
        colours = heat(pixel)
        rank = pixel
    else:
        colours, rank = np.asarray(PALETTE, dtype=np.float64)[ids], np.zeros(z.shape)
    u = np.round((across / far + 1) / 2 * (CLOUD_SIZE - 2)).astype(np.int64)
    v = np.round((1 - z / far) * (CLOUD_SIZE - 2)).astype(np.int64)
    keep &= (u >= 0) & (u < CLOUD_SIZE - 1) & (v >= 0) & (v < CLOUD_SIZE - 1)
    order = np.argsort(rank[keep], kind="stable")
    u, v, colours = u[keep][order], v[keep][order], colours[keep][order]
    image = np.full((CLOUD_SIZE, CLOUD_SIZE, 3), CLOUD_BACKGROUND, dtype=np.uint8)
    for du in (0, 1):  # 2x2 dots
        for dv in (0, 1):
            image[v + dv, u + du] = colours.round().astype(np.uint8)
    mid = CLOUD_SIZE // 2
    image[-4:, mid - 2 : mid + 2] = 255  # the robot
    return image


def heat(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (...) -> RGB (..., 3) on the page's heat colours (inferno-like)."""
    x = np.clip(values, 0.0, 1.0) * (len(HEAT) - 1)
    i = np.minimum(np.floor(x).astype(np.int64), len(HEAT) - 2)
    f = (x - i)[..., None]
    return HEAT[i] + f * (HEAT[i + 1] - HEAT[i])
