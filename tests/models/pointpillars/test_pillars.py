"""Pillarisation against a straightforward per-point loop (hard voxelisation's rules)."""

import math

import numpy as np
import pytest
import torch

from attnlab.errors import InputError
from attnlab.models.pointpillars.pillars import PillarConfig, decorate, pillarize


def _loop_pillars(cloud: np.ndarray, cfg: PillarConfig) -> dict[tuple[int, int], list[np.ndarray]]:
    """Pillars in order of their first point, points in cloud order, caps dropping later ones."""
    x0, y0, z0, x1, y1, z1 = cfg.point_range
    vx, vy, _ = cfg.voxel_size
    ny, nx = cfg.grid_size
    pillars: dict[tuple[int, int], list[np.ndarray]] = {}
    for p in cloud:
        x, y, z = float(p[0]), float(p[1]), float(p[2])
        if not (x0 <= x < x1 and y0 <= y < y1 and z0 <= z < z1):
            continue
        ix, iy = math.floor((x - x0) / vx), math.floor((y - y0) / vy)
        if ix >= nx or iy >= ny:
            continue
        if (iy, ix) not in pillars:
            if len(pillars) >= cfg.max_pillars:
                continue
            pillars[(iy, ix)] = []
        if len(pillars[(iy, ix)]) < cfg.max_points_per_pillar:
            pillars[(iy, ix)].append(p)
    return pillars


def _cloud(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Dense clusters (to overflow pillars) plus scattered points, some outside the range.
    centres = rng.uniform([0, -40, -3], [70, 40, 1], (20, 3))
    clustered = centres[rng.integers(0, 20, n // 2)] + rng.normal(0, [0.1, 0.1, 0.5], (n // 2, 3))
    scattered = rng.uniform([-5, -45, -4], [75, 45, 2], (n - n // 2, 3))
    xyz = np.concatenate([clustered, scattered])[rng.permutation(n)]
    return np.concatenate([xyz, rng.uniform(0, 1, (n, 1))], 1).astype(np.float32)


@pytest.mark.parametrize("max_pillars", [16000, 300])
def test_pillars_match_a_per_point_loop(max_pillars):
    cfg = PillarConfig(max_points_per_pillar=8, max_pillars=max_pillars)
    clouds = [_cloud(0, 3000), _cloud(1, 2000), np.zeros((0, 4), np.float32)]
    result = pillarize([torch.from_numpy(c) for c in clouds], cfg)
    assert result.batch_size == 3
    row = 0
    for b, cloud in enumerate(clouds):
        expected = _loop_pillars(cloud, cfg)
        if max_pillars == 300 and b < 2:
            assert len(expected) == 300  # the cap is hit
        for (iy, ix), pts in expected.items():
            assert result.coords[row].tolist() == [b, iy, ix]
            n = len(pts)
            assert int(result.num_points[row]) == n
            np.testing.assert_array_equal(result.points[row, :n].numpy(), np.stack(pts))
            assert torch.all(result.points[row, n:] == 0)
            row += 1
    assert row == len(result.coords)
    assert int(result.num_points.max()) == 8  # some pillars overflowed and were capped


def test_decoration_matches_the_papers_definition():
    cfg = PillarConfig()
    cloud = torch.tensor([[1.00, 0.05, -1.0, 0.5], [1.10, 0.10, 0.0, 0.2], [10.0, -5.0, -2.0, 0.9]])
    pillars = pillarize([cloud], cfg)
    feats = decorate(pillars, cfg)  # (P, M, 9)
    assert feats.shape == (2, 32, 9)
    # Pillar of the first two points: ix = floor(1 / 0.16) = 6, iy = floor(39.73 / 0.16) = 248.
    assert pillars.coords[0].tolist() == [0, 248, 6]
    centre = (6.5 * 0.16, 248.5 * 0.16 - 39.68)
    mean = cloud[:2, :3].mean(0)
    expected = [
        [*cloud[0].tolist(), *(cloud[0, :3] - mean).tolist(), 1.00 - centre[0], 0.05 - centre[1]],
        [*cloud[1].tolist(), *(cloud[1, :3] - mean).tolist(), 1.10 - centre[0], 0.10 - centre[1]],
    ]
    np.testing.assert_allclose(feats[0, :2].numpy(), np.array(expected), atol=1e-5, rtol=0)
    assert torch.all(feats[0, 2:] == 0) and torch.all(feats[1, 0, 4:7] == 0)  # a lone point is its mean


def test_kitti_grid_and_bad_input():
    assert PillarConfig().grid_size == (496, 432)
    with pytest.raises(InputError, match="pillar spans the whole height"):
        PillarConfig(voxel_size=(0.16, 0.16, 1.0))
    with pytest.raises(InputError, match=r"cloud 0 must be \(N, C >= 3\)"):
        pillarize([torch.zeros(5, 2)], PillarConfig())
    with pytest.raises(InputError, match="at least one point cloud"):
        pillarize([], PillarConfig())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_pillars_on_cuda_equal_the_cpus():
    cfg = PillarConfig(max_points_per_pillar=8, max_pillars=300)
    clouds = [torch.from_numpy(_cloud(0, 3000)), torch.from_numpy(_cloud(1, 2000))]
    cpu = pillarize(clouds, cfg)
    gpu = pillarize([c.cuda() for c in clouds], cfg)
    for field in ("points", "num_points", "coords"):
        assert torch.equal(getattr(gpu, field).cpu(), getattr(cpu, field)), field
    torch.testing.assert_close(decorate(gpu, cfg).cpu(), decorate(cpu, cfg))
