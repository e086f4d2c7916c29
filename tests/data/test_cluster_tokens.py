"""The k-means cluster tokens (``data.encoder kmeans``): by hand on a built frame, and against a loop."""

import pytest
import torch

from attnlab.data.cluster_tokens import CLUSTER_TOKEN_DIM, POSITION_WEIGHT, cluster_tokens
from attnlab.errors import InputError
from attnlab.models.object_centric.frame_clusters import frame_clusters

GREY, RED = (0.5, 0.5, 0.5), (0.8, 0.1, 0.1)


def test_a_red_quadrant_on_grey_gives_its_colour_centroid_and_area_by_hand():
    video = torch.tensor(GREY)[:, None, None].repeat(1, 8, 8)
    video[:, 0:4, 4:8] = torch.tensor(RED)[:, None, None]  # the top right quadrant, 16 pixels
    video[:, 1, 5] = torch.tensor((0.4, 0.05, 0.05))  # one shaded pixel: same chromaticity, half as bright
    tokens = cluster_tokens(video[None, None], 2)  # (1, 1, 2, 9)
    assert tokens.shape == (1, 1, 2, CLUSTER_TOKEN_DIM)
    square = int(tokens[0, 0, :, 8].argmin())  # the smaller cluster
    red, grey = tokens[0, 0, square], tokens[0, 0, 1 - square]
    # 15 pixels (0.8, 0.1, 0.1) and one half as bright: mean a - (a - b) / 16, spread sqrt(15) / 16 |a - b|
    torch.testing.assert_close(red[:3], torch.tensor([0.775, 0.096875, 0.096875]))
    torch.testing.assert_close(red[3:6], 15**0.5 / 16 * torch.tensor([0.4, 0.05, 0.05]))
    torch.testing.assert_close(red[6:], torch.tensor([6 / 8, 2 / 8, 16 / 64]))  # centroid x, y; area
    torch.testing.assert_close(grey[:6], torch.tensor([*GREY, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(grey[8], torch.tensor(48 / 64))


def test_the_tokens_equal_a_float64_loop_over_the_clusters():
    torch.manual_seed(0)
    video = torch.rand(2, 3, 3, 6, 6)
    tokens = cluster_tokens(video, 4).double()
    extent = cluster_tokens(video, 4, extent=True).double()  # (B, T, K, 11)
    masks = frame_clusters(video, (6, 6), 4, "chromaticity", POSITION_WEIGHT)  # (B, T, K, 36)
    pixels = video.double().flatten(3)  # (B, T, 3, 36)
    ys, xs = torch.meshgrid((torch.arange(6.0) + 0.5) / 6, (torch.arange(6.0) + 0.5) / 6, indexing="ij")
    for b in range(2):
        for t in range(3):
            for k in range(4):
                where = masks[b, t, k].bool()
                if not where.any():
                    assert not tokens[b, t, k, :6].any() and not extent[b, t, k, :8].any()
                    continue
                chosen = pixels[b, t][:, where]  # (3, n)
                want = [
                    *chosen.mean(1),
                    *chosen.std(1, unbiased=False),
                    xs.flatten().double()[where].mean(),
                    ys.flatten().double()[where].mean(),
                    where.double().mean(),
                ]
                torch.testing.assert_close(tokens[b, t, k], torch.stack(want), atol=1e-6, rtol=1e-5)
                spread = [c.flatten().double()[where].std(unbiased=False) for c in (ys, xs)]
                with_extent = torch.stack([*want[:6], *spread, *want[6:]])
                torch.testing.assert_close(extent[b, t, k], with_extent, atol=1e-6, rtol=1e-5)


def test_a_cluster_follows_its_square_from_frame_to_frame():
    frames = torch.tensor(GREY)[None, :, None, None].repeat(2, 1, 8, 8)  # (T, 3, 8, 8)
    pure = torch.tensor((0.9, 0.0, 0.0))[:, None, None]  # red enough that the floor's pixels stay grey's
    frames[0, :, 0:4, 0:4] = pure
    frames[1, :, 1:5, 1:5] = pure  # the square moves one pixel down and right
    tokens = cluster_tokens(frames[None], 2)[0]  # (T, K, 9)
    square = int(tokens[0, :, 8].argmin())
    assert int(tokens[1, :, 8].argmin()) == square  # the same token index in both frames
    torch.testing.assert_close(tokens[1, square, 6:8] - tokens[0, square, 6:8], torch.tensor([1 / 8, 1 / 8]))


@pytest.mark.parametrize(
    ("video", "clusters", "message"),
    [
        (torch.rand(1, 2, 1, 8, 8), 2, "video must be floating"),
        (torch.zeros(1, 2, 3, 8, 8, dtype=torch.uint8), 2, "video must be floating"),
        (torch.rand(1, 2, 3, 8, 8), 0, "clusters must be >= 1"),
    ],
)
def test_bad_input_is_one_line(video, clusters, message):
    with pytest.raises(InputError, match=message):
        cluster_tokens(video, clusters)
