"""Batched k-means against hand-worked cases and a float64 loop over one point set at a time."""

import pytest
import torch

from attnlab.errors import InputError
from attnlab.layers.kmeans import farthest_point_centres, kmeans


def lloyd64(points: torch.Tensor, centres: torch.Tensor, iterations: int) -> torch.Tensor:
    """Lloyd's algorithm on one point set (N, F) in float64, a point and a cluster at a time."""
    points, centres = points.double(), centres.double().clone()
    for _ in range(iterations):
        nearest = [
            min(range(len(centres)), key=lambda k: float(((p - centres[k]) ** 2).sum())) for p in points
        ]
        for k in range(len(centres)):
            members = [p for p, j in zip(points, nearest, strict=True) if j == k]
            if members:
                centres[k] = torch.stack(members).mean(0)
    return torch.cdist(points, centres).argmin(1)


def test_two_pairs_on_a_line_by_hand():
    points = torch.tensor([[[0.0], [1.0], [10.0], [11.0]]])
    nearest, centres = kmeans(points, 2)
    assert nearest.tolist() == [[0, 0, 1, 1]]
    torch.testing.assert_close(centres, torch.tensor([[[0.5], [10.5]]]))


def test_farthest_points_by_hand():
    # 0 first; 10 is farthest from it; then 3 (3 from 0) beats 1 (1 from 0) and 9 (1 from 10)
    points = torch.tensor([[[0.0], [1.0], [3.0], [10.0], [9.0]]])
    assert farthest_point_centres(points, 3).flatten().tolist() == [0.0, 10.0, 3.0]


def test_equals_a_float64_loop_on_every_point_set():
    gen = torch.Generator().manual_seed(0)
    points = torch.randn(4, 60, 3, generator=gen)
    nearest, _ = kmeans(points, 5, iterations=8)
    start = farthest_point_centres(points, 5)
    for b in range(4):
        assert torch.equal(nearest[b], lloyd64(points[b], start[b], 8)), b


def test_given_centres_start_it_and_an_empty_cluster_keeps_its_centre():
    points = torch.tensor([[[0.0], [1.0], [2.0]]])
    start = torch.tensor([[[0.0], [100.0]]])
    assert kmeans(points, 2, iterations=0, centres=start)[0].tolist() == [[0, 0, 0]]
    nearest, centres = kmeans(points, 2, iterations=3, centres=start)
    assert nearest.tolist() == [[0, 0, 0]]
    torch.testing.assert_close(centres, torch.tensor([[[1.0], [100.0]]]))


def test_bad_inputs():
    with pytest.raises(InputError, match="points must be"):
        kmeans(torch.zeros(4, 2), 2)
    with pytest.raises(InputError, match="points must be"):
        kmeans(torch.zeros(1, 4, 2, dtype=torch.long), 2)
    with pytest.raises(InputError, match="clusters >= 1"):
        kmeans(torch.zeros(1, 4, 2), 0)
    with pytest.raises(InputError, match="centres must be"):
        kmeans(torch.zeros(1, 4, 2), 2, centres=torch.zeros(1, 3, 2))
