"""V-JEPA's fixed 3D sine-cosine position table (facebookresearch/jepa ``get_3d_sincos_pos_embed``).

The table is :func:`attnlab.layers.pos_embed.sincos_pos_embed` over the (T', H', W') token
grid with V-JEPA's split of the channels over the axes, in token order t-major, then row,
then column:

* ``uniform_power=True``: each axis gets ``2 * ceil(D / 6)`` channels, concatenated
  [time | row | column] and cut to D (22 + 22 + 20 for D = 64);
* ``uniform_power=False``: D/2 for time, D/4 for rows and D/4 for columns.
"""

from __future__ import annotations

import math

import torch

from attnlab.errors import ConfigError
from attnlab.layers.pos_embed import sincos_pos_embed


def axis_dims(dim: int, *, uniform_power: bool) -> tuple[int, int, int]:
    """Channels per axis (time, row, column) before the cut to ``dim``."""
    if uniform_power:
        per_axis = 2 * math.ceil(dim / 6)
        return (per_axis, per_axis, per_axis)
    if dim % 8:
        raise ConfigError(f"V-JEPA's 3D sincos split (D/2, D/4, D/4) needs dim divisible by 8, got {dim}")
    return (dim // 2, dim // 4, dim // 4)


def sincos_table_3d(grid: tuple[int, int, int], dim: int, *, uniform_power: bool) -> torch.Tensor:
    """(T' * H' * W', dim) float32 table for a token grid (T', H', W')."""
    table = sincos_pos_embed(grid, dim, axis_dims=axis_dims(dim, uniform_power=uniform_power))
    return table.reshape(-1, dim)  # (N, D), t-major then row then column
