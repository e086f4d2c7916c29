"""Pillarisation: LiDAR points -> pillars (vertical columns of a BEV grid), scatter/unique in torch.

PointPillars (Lang et al., CVPR 2019, arXiv:1812.05784), section 2.1, with the KITTI settings of
the paper and of OpenPCDet's ``pointpillar.yaml``: 0.16 x 0.16 x 4 m pillars over
x in [0, 69.12), y in [-39.68, 39.68), z in [-3, 1) (a 432 x 496 grid), at most 32 points per
pillar and 16000 pillars per cloud in training (40000 in testing).

Which pillars and points are kept when a cap is hit follows hard voxelisation (mmcv's
``Voxelization``, spconv's ``PointToVoxel``): pillars in the order of their first point, points
in cloud order; later ones are dropped. No Python loop over points: one ``unique`` gives each
point its pillar, a sort gives each its slot, and an index_put fills the padded tensor.

Deviation: grid indices are computed in float64 (the CUDA kernels use float32), so a point within
float32 rounding of a pillar border may fall in the neighbouring pillar compared with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from attnlab.errors import InputError


@dataclass(frozen=True)
class PillarConfig:
    """The BEV grid and the caps (KITTI defaults, training)."""

    voxel_size: tuple[float, float, float] = (0.16, 0.16, 4.0)
    point_range: tuple[float, float, float, float, float, float] = (0.0, -39.68, -3.0, 69.12, 39.68, 1.0)
    max_points_per_pillar: int = 32
    max_pillars: int = 16000  # per cloud; the paper uses 12000, OpenPCDet 16000 train / 40000 test

    def __post_init__(self) -> None:
        if abs((self.point_range[5] - self.point_range[2]) - self.voxel_size[2]) > 1e-6:
            raise InputError(
                f"a pillar spans the whole height: voxel_size z {self.voxel_size[2]} must equal the "
                f"range's height {self.point_range[5] - self.point_range[2]}"
            )
        if self.max_points_per_pillar < 1 or self.max_pillars < 1:
            raise InputError("max_points_per_pillar and max_pillars must be >= 1")

    @property
    def grid_size(self) -> tuple[int, int]:
        """(ny, nx) pillars across the range."""
        nx = round((self.point_range[3] - self.point_range[0]) / self.voxel_size[0])
        ny = round((self.point_range[4] - self.point_range[1]) / self.voxel_size[1])
        return ny, nx


@dataclass
class Pillars:
    """P pillars of a batch of clouds, padded to M points each."""

    points: torch.Tensor  # (P, M, C) the raw points (x y z reflectance ...), zeros in empty slots
    num_points: torch.Tensor  # (P,) long: points in each pillar, 1..M
    coords: torch.Tensor  # (P, 3) long: (cloud index, iy, ix) of each pillar
    batch_size: int


def point_cells(points: torch.Tensor, cfg: PillarConfig) -> torch.Tensor:
    """(N,) long: the pillar cell ``iy * nx + ix`` of each (N, C >= 3) point, -1 outside the range.

    The one rule :func:`pillarize` groups points by, so an explanation made on the pseudo-image can
    be handed back to the points it came from."""
    ny, nx = cfg.grid_size
    dev = points.device
    lo = torch.tensor(cfg.point_range[:3], dtype=torch.float64, device=dev)
    hi = torch.tensor(cfg.point_range[3:], dtype=torch.float64, device=dev)
    size = torch.tensor(cfg.voxel_size, dtype=torch.float64, device=dev)
    xyz = points[:, :3].detach().double()
    # Points in [lo, hi): the right border belongs to no pillar.
    inside = ((xyz >= lo) & (xyz < hi)).all(1)
    cell = torch.floor((xyz - lo) / size).long()  # (N, 3)
    inside &= (cell[:, 0] < nx) & (cell[:, 1] < ny)  # float64 rounding at the far border
    flat = cell[:, 1] * nx + cell[:, 0]
    return torch.where(inside, flat, torch.full_like(flat, -1))


def pillarize(clouds: list[torch.Tensor], cfg: PillarConfig) -> Pillars:
    """Group each (N_b, C >= 3) cloud's in-range points into pillars; clouds share one output."""
    if not clouds:
        raise InputError("pillarize needs at least one point cloud")
    for b, cloud in enumerate(clouds):
        if cloud.dim() != 2 or cloud.shape[1] < 3:
            raise InputError(f"cloud {b} must be (N, C >= 3) points, got shape {tuple(cloud.shape)}")
    ny, nx = cfg.grid_size
    points = torch.cat(clouds)  # (N, C)
    dev = points.device
    batch = torch.cat([torch.full((len(c),), b, dtype=torch.long, device=dev) for b, c in enumerate(clouds)])
    cells = point_cells(points, cfg)  # (N,) iy * nx + ix, -1 outside
    idx = torch.nonzero(cells >= 0).squeeze(1)  # (K,) kept points, in cloud order
    key = batch[idx] * (ny * nx) + cells[idx]  # (K,) one id per (cloud, iy, ix)
    uniq, inverse = torch.unique(key, return_inverse=True)  # sorted ids, each point's id
    order = torch.arange(len(idx), device=dev)
    first = torch.full((len(uniq),), len(idx), dtype=torch.long, device=dev)
    first = first.scatter_reduce(0, inverse, order, "amin")  # (U,) each pillar's first point
    # Rank pillars by their first point (cloud order, so clouds stay in batch order).
    by_first = torch.argsort(first)
    rank = torch.empty_like(by_first)
    rank[by_first] = torch.arange(len(uniq), device=dev)
    point_rank = rank[inverse]  # (K,) the pillar rank of each point
    # Slot of each point inside its pillar: its position among the pillar's points, in cloud order.
    sort = torch.argsort(point_rank * len(idx) + order)  # stable grouping by pillar, then order
    counts = torch.bincount(point_rank, minlength=len(uniq))
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.empty_like(order)
    slot[sort] = order - starts[point_rank[sort]]
    # Per-cloud pillar cap: rank within its cloud.
    pillar_cloud = uniq[by_first] // (ny * nx)  # (U,) cloud of each ranked pillar
    cloud_start = torch.searchsorted(pillar_cloud, torch.arange(len(clouds), device=dev))
    rank_in_cloud = torch.arange(len(uniq), device=dev) - cloud_start[pillar_cloud]
    keep_pillar = rank_in_cloud < cfg.max_pillars  # (U,)
    new_id = torch.cumsum(keep_pillar.long(), 0) - 1
    keep = keep_pillar[point_rank] & (slot < cfg.max_points_per_pillar)
    num_pillars = int(keep_pillar.sum())
    out = points.new_zeros((num_pillars, cfg.max_points_per_pillar, points.shape[1]))
    out[new_id[point_rank[keep]], slot[keep]] = points[idx[keep]]
    num_points = torch.bincount(new_id[point_rank[keep]], minlength=num_pillars)
    kept_keys = uniq[by_first][keep_pillar]
    coords = torch.stack([kept_keys // (ny * nx), (kept_keys // nx) % ny, kept_keys % nx], 1)
    return Pillars(points=out, num_points=num_points, coords=coords, batch_size=len(clouds))


def decorate(pillars: Pillars, cfg: PillarConfig) -> torch.Tensor:
    """(P, M, 9) features: x y z r, offsets from the pillar's point mean (xc yc zc) and from its
    centre (xp yp), zero in empty slots (the paper's 9-D input to the PointNet)."""
    pts = pillars.points[..., :4]  # (P, M, 4)
    m = pts.shape[1]
    mask = (torch.arange(m, device=pts.device)[None] < pillars.num_points[:, None]).to(pts.dtype)  # (P, M)
    mean = (pts[..., :3] * mask[..., None]).sum(1) / pillars.num_points.clamp(min=1)[:, None].to(pts.dtype)
    centre_x = (pillars.coords[:, 2].to(pts.dtype) + 0.5) * cfg.voxel_size[0] + cfg.point_range[0]  # (P,)
    centre_y = (pillars.coords[:, 1].to(pts.dtype) + 0.5) * cfg.voxel_size[1] + cfg.point_range[1]
    cluster = pts[..., :3] - mean[:, None]  # (P, M, 3)
    centre = torch.stack([pts[..., 0] - centre_x[:, None], pts[..., 1] - centre_y[:, None]], -1)  # (P, M, 2)
    return torch.cat([pts, cluster, centre], -1) * mask[..., None]
