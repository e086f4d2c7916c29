"""Each frame's clusters of its pixels (SFA's slot_init="kmeans") on hand-built frames."""

import pytest
import torch

from attnlab.models.object_centric.frame_clusters import frame_clusters

GREY, RED, BLUE = (0.5, 0.5, 0.5), (0.8, 0.1, 0.1), (0.1, 0.1, 0.8)


def frame(squares: list[tuple[int, int, tuple[float, float, float]]], size: int = 8) -> torch.Tensor:
    """A grey frame (3, size, size) with 2 x 2 squares of colour at (y, x)."""
    image = torch.tensor(GREY)[:, None, None].repeat(1, size, size)
    for y, x, colour in squares:
        image[:, y : y + 2, x : x + 2] = torch.tensor(colour)[:, None, None]
    return image


def groups(one_hot: torch.Tensor, size: int = 8) -> torch.Tensor:
    """(K, N) one-hot -> each cell's cluster (size, size)."""
    return one_hot.argmax(0).view(size, size)


def test_position_parts_two_objects_of_one_colour_and_colour_alone_does_not():
    video = frame([(1, 1, RED), (5, 5, RED), (1, 5, BLUE)])[None, None]  # (1, 1, 3, 8, 8)
    # five clusters: with position the large floor takes two (with four, the red pair would share one)
    apart = groups(frame_clusters(video, (8, 8), 5, "rgb", 1.0)[0, 0])
    objects = {int(apart[1, 1]), int(apart[5, 5]), int(apart[1, 5])}
    assert len(objects) == 3 and int(apart[0, 0]) not in objects
    together = groups(frame_clusters(video, (8, 8), 5, "rgb", 0.0)[0, 0])
    assert together[1, 1] == together[5, 5] != together[0, 0]  # the red pair share a cluster


def test_the_clusters_are_one_hot_at_the_token_grid_and_follow_their_objects():
    frames = [frame([(1, 1, RED), (5, 5, BLUE)]), frame([(2, 1, RED), (5, 4, BLUE)])]  # both move
    video = torch.stack(frames)[None].repeat(2, 1, 1, 1, 1)  # (2, 2, 3, 8, 8)
    clusters = frame_clusters(video, (8, 8), 3, "chromaticity", 1.0)
    assert clusters.shape == (2, 2, 3, 64)
    torch.testing.assert_close(clusters.sum(2), torch.ones(2, 2, 64))
    first, second = groups(clusters[0, 0]), groups(clusters[0, 1])
    assert first[1, 1] == second[2, 1] and first[5, 5] == second[5, 4]  # warm-started: same cluster
    aligned = frame([(2, 2, RED)])[None, None]  # the square fills the 2 x 2 cell (1, 1) of a 4 x 4 grid
    coarse = frame_clusters(aligned, (4, 4), 2, "rgb", 0.0)  # area-averaged cells
    assert coarse.shape == (1, 1, 2, 16)
    cells = groups(coarse[0, 0], 4)
    assert (cells == cells[1, 1]).sum() == 1  # the red cell alone


def test_chromaticity_keeps_a_lit_and_shaded_object_in_one_cluster():
    video = frame([(2, 2, (0.8, 0.4, 0.2)), (2, 4, (0.4, 0.2, 0.1))])[None, None]  # lit and shaded sides
    chroma = groups(frame_clusters(video, (8, 8), 2, "chromaticity", 0.0)[0, 0])
    assert chroma[2, 2] == chroma[2, 4] != chroma[0, 0]
    rgb = groups(frame_clusters(video, (8, 8), 2, "rgb", 0.0)[0, 0])
    assert rgb[2, 2] != rgb[2, 4]  # in rgb the two sides differ more than the lit side and the floor


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_clusters_take_the_videos_dtype_and_no_gradient(dtype):
    video = torch.rand(1, 2, 3, 8, 8, dtype=dtype, requires_grad=True)
    clusters = frame_clusters(video, (8, 8), 3, "rgb", 1.0)
    assert clusters.dtype == dtype and not clusters.requires_grad
