import torch

from attnlab.data.points import RingOfGaussians, mode_centers
from attnlab.metrics.mixture import mixture_quality

CENTERS = mode_centers(8, 2.0)


def test_the_mixture_itself_scores_its_ceiling():
    data = RingOfGaussians(centers=CENTERS, std=0.02, max_set_size=4, seed=0, size=800)
    points = torch.cat([data[i].points for i in range(len(data))])
    quality = mixture_quality(points, CENTERS, 0.02)
    assert 0.97 < float(quality["high_quality"]) <= 1.0  # 1 - exp(-4.5) = 0.989 in 2D
    assert int(quality["modes"]) == 8


def test_points_off_the_ring_and_a_collapsed_generator():
    origin = mixture_quality(torch.zeros(100, 2), CENTERS, 0.02)
    assert float(origin["high_quality"]) == 0.0 and int(origin["modes"]) == 0
    collapsed = mixture_quality(CENTERS[3].expand(100, 2) + 0.01, CENTERS, 0.02)
    assert float(collapsed["high_quality"]) == 1.0 and int(collapsed["modes"]) == 1
