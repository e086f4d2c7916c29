"""Position embeddings for tokens on 1D, 2D and 3D grids.

Fixed sine-cosine embeddings (Vaswani et al., NeurIPS 2017, arXiv:1706.03762) in the
multi-axis form of MAE (He et al., CVPR 2022, arXiv:2111.06377) and V-JEPA (Bardes et
al. 2024, arXiv:2404.08471; facebookresearch/jepa ``src/models/utils/pos_embs.py``):
the embedding dimension is split over the axes, and each axis' part for position p
with ``d`` dims is ``[sin(p * w_0) .. sin(p * w_{d/2-1}), cos(p * w_0) .. cos(p * w_{d/2-1})]``
with ``w_i = 1 / 10000^(2i / d)``. Axis parts are concatenated in grid order
(T, H, W), i.e. [time | row | column].

Split over axes: evenly by default (as V-JEPA's ``uniform_power=True`` when the dim
is divisible by 6, and as MAE/V-JEPA in 2D). ``axis_dims`` gives any other split, e.g.
V-JEPA's default 3D split ``(D/2, D/4, D/4)``; when its sum exceeds ``dim`` the
concatenation is cut to ``dim``, which is how V-JEPA's ``uniform_power`` handles dims
not divisible by 6 (``2 * ceil(D / 6)`` per axis). MAE's 2D code puts the column
part first; V-JEPA's (and ours) puts the row first.

Learned embeddings (ViT, Dosovitskiy et al., ICLR 2021, arXiv:2010.11929) are
initialised as timm's (truncated normal, std 0.02) and, like timm's
``resample_abs_pos_embed``, resized to another grid by (bi/tri)linear interpolation
(``align_corners=False``; no antialiasing, which trilinear mode lacks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import InputError

_INTERP_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def sincos_from_positions(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Sine-cosine embedding (..., dim) of (possibly fractional) positions (...)."""
    if dim < 2 or dim % 2 != 0:
        raise InputError(f"a sine-cosine embedding needs an even dim >= 2, got {dim}")
    half = dim // 2
    omega = 1.0 / 10000 ** (torch.arange(half, dtype=torch.float64, device=positions.device) / half)
    angles = positions.to(torch.float64)[..., None] * omega  # (..., dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)  # (..., dim)


def _check_grid(grid: Sequence[int]) -> tuple[int, ...]:
    grid = tuple(grid)
    if not 1 <= len(grid) <= 3 or any(not isinstance(n, int) or n < 1 for n in grid):
        raise InputError(f"grid must be 1 to 3 positive ints (L,), (H, W) or (T, H, W), got {grid}")
    return grid


def _axis_dims(dim: int, num_axes: int, axis_dims: Sequence[int] | None) -> tuple[int, ...]:
    if axis_dims is None:
        if dim % (2 * num_axes) != 0:
            raise InputError(
                f"dim={dim} must be divisible by {2 * num_axes} to split evenly (sin and cos) "
                f"over {num_axes} {'axis' if num_axes == 1 else 'axes'}; pass axis_dims for another split"
            )
        return (dim // num_axes,) * num_axes
    dims = tuple(axis_dims)
    if len(dims) != num_axes or any(d < 2 or d % 2 != 0 for d in dims) or sum(dims) < dim:
        raise InputError(
            f"axis_dims must be {num_axes} even numbers >= 2 summing to at least dim={dim}, got {dims}"
        )
    return dims


def sincos_pos_embed(
    grid: Sequence[int],
    dim: int,
    *,
    axis_dims: Sequence[int] | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Sine-cosine embedding of integer grid positions: (*grid, dim), axis parts in grid order."""
    grid = _check_grid(grid)
    dims = _axis_dims(dim, len(grid), axis_dims)
    parts = []
    for axis, (n, d) in enumerate(zip(grid, dims, strict=True)):
        emb = sincos_from_positions(torch.arange(n, device=device), d)  # (n, d)
        shape = [1] * len(grid)
        shape[axis] = n
        parts.append(emb.view(*shape, d).expand(*grid, d))  # (*grid, d)
    return torch.cat(parts, dim=-1)[..., :dim].to(dtype)  # (*grid, dim)


def sincos_pos_embed_1d(
    length: int, dim: int, *, dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> torch.Tensor:
    """(L, dim) embedding of positions 0..L-1."""
    return sincos_pos_embed((length,), dim, dtype=dtype, device=device)


def sincos_pos_embed_2d(
    height: int,
    width: int,
    dim: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> torch.Tensor:
    """(H, W, dim) embedding: [row part (dim/2) | column part (dim/2)]."""
    return sincos_pos_embed((height, width), dim, dtype=dtype, device=device)


def sincos_pos_embed_3d(
    frames: int,
    height: int,
    width: int,
    dim: int,
    *,
    axis_dims: Sequence[int] | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> torch.Tensor:
    """(T, H, W, dim) embedding: [time | row | column], split evenly unless ``axis_dims``."""
    return sincos_pos_embed((frames, height, width), dim, axis_dims=axis_dims, dtype=dtype, device=device)


def _check_tokens(x: torch.Tensor, dim: int, grid: tuple[int, ...]) -> None:
    n = math.prod(grid)
    if x.dim() != 3 or x.shape[1] != n or x.shape[2] != dim or not x.is_floating_point():
        raise InputError(
            f"x must be floating (B, N={n}, {dim}) tokens of grid {grid} in row-major order, "
            f"got {x.dtype} {tuple(x.shape)}"
        )


class SinusoidalPositionEmbedding(nn.Module):
    """Adds a fixed sine-cosine embedding to (B, N, D) tokens of a 1D/2D/3D grid (N = prod(grid)).

    ``forward(x, grid=...)`` with another grid evaluates the sinusoids at that grid's
    integer positions (exact, no interpolation needed for a fixed function).
    """

    pos_embed: torch.Tensor

    def __init__(self, dim: int, *, grid: Sequence[int], axis_dims: Sequence[int] | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.grid = _check_grid(grid)
        self.axis_dims = None if axis_dims is None else tuple(axis_dims)
        table = sincos_pos_embed(self.grid, dim, axis_dims=self.axis_dims)  # (*grid, D)
        # not persistent: a function of the config, so checkpoints need not carry it
        self.register_buffer("pos_embed", table.reshape(-1, dim), persistent=False)  # (N, D)

    def forward(self, x: torch.Tensor, *, grid: Sequence[int] | None = None) -> torch.Tensor:
        target = self.grid if grid is None else _check_grid(grid)
        _check_tokens(x, self.dim, target)
        if target == self.grid:
            table = self.pos_embed
        else:
            table = sincos_pos_embed(target, self.dim, axis_dims=self.axis_dims, device=x.device)
            table = table.reshape(-1, self.dim)  # (N', D)
        return x + table.to(x.dtype)


class LearnedPositionEmbedding(nn.Module):
    """Adds a learned embedding of shape (*grid, D) to (B, N, D) tokens (N = prod(grid)).

    With ``forward(x, grid=...)`` for another grid of the same rank the table is
    resized by :meth:`interpolate` first.
    """

    def __init__(self, dim: int, *, grid: Sequence[int], init_std: float = 0.02) -> None:
        super().__init__()
        self.dim = dim
        self.grid = _check_grid(grid)
        self.pos_embed = nn.Parameter(torch.empty(*self.grid, dim))
        nn.init.trunc_normal_(self.pos_embed, std=init_std)

    def interpolate(self, grid: Sequence[int]) -> torch.Tensor:
        """The table resized to ``grid`` (same number of axes): (*grid, D)."""
        target = _check_grid(grid)
        if len(target) != len(self.grid):
            raise InputError(f"cannot interpolate a {len(self.grid)}D grid {self.grid} to {target}")
        if target == self.grid:
            return self.pos_embed
        table = self.pos_embed.movedim(-1, 0)[None]  # (1, D, *grid)
        table = F.interpolate(table, size=target, mode=_INTERP_MODES[len(target)], align_corners=False)
        return table[0].movedim(0, -1)  # (*target, D)

    def forward(self, x: torch.Tensor, *, grid: Sequence[int] | None = None) -> torch.Tensor:
        target = self.grid if grid is None else _check_grid(grid)
        _check_tokens(x, self.dim, target)
        table = self.interpolate(target).reshape(-1, self.dim)  # (N, D)
        return x + table.to(x.dtype)


def cell_centres(h: int, w: int) -> torch.Tensor:
    """The (y, x) in [0, 1] of an h x w grid's cell centres, row-major like a grid's tokens: (h * w, 2)."""
    ys, xs = torch.meshgrid((torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w, indexing="ij")
    return torch.stack([ys, xs], -1).view(h * w, 2)


class SoftPositionEmbedding(nn.Module):
    """Slot Attention's position embedding (Locatello et al. 2020, ``SoftPositionEmbed``): a
    learned linear map of the 4-d grid (y, x, 1 - y, 1 - x), each in [0, 1], added to
    (B, H * W, D) row-major tokens of an (H, W) grid.

    A low-frequency ramp that the network scales as it learns, where the fixed sine-cosine
    table adds a vector of norm sqrt(D / 2) whatever the content (SFA's small recipe uses it:
    docs/object_centric.md, a3).
    """

    grid_features: torch.Tensor

    def __init__(self, dim: int, *, grid: Sequence[int]) -> None:
        super().__init__()
        self.grid = _check_grid(grid)
        if len(self.grid) != 2:
            raise InputError(f"SoftPositionEmbedding needs an (H, W) grid, got {self.grid}")
        self.dim = dim
        ys, xs = torch.meshgrid(
            torch.linspace(0, 1, self.grid[0]), torch.linspace(0, 1, self.grid[1]), indexing="ij"
        )
        features = torch.stack([ys, xs, 1 - ys, 1 - xs], dim=-1).reshape(-1, 4)  # (H*W, 4)
        self.register_buffer("grid_features", features, persistent=False)
        self.proj = nn.Linear(4, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_tokens(x, self.dim, self.grid)
        return x + self.proj(self.grid_features).to(x.dtype)
