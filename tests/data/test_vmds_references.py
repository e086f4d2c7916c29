"""scripts/vmds_references.py: the reference rows of docs/object_centric.md, counted another way."""

import runpy
from pathlib import Path

import pytest
import torch

from attnlab.data.sprites import VMDSData

SCRIPT = Path(__file__).parents[2] / "scripts" / "vmds_references.py"


def test_references_match_a_direct_count(one_thread):
    mse, one_slot_ari = runpy.run_path(str(SCRIPT))["references"](seed=3, test_size=6)
    clips = VMDSData(seed=3, test_size=6).build("test")
    # sprites visible in each frame; one slot for everything is a perfect partition only with one
    visible = [len(set(frame.unique().tolist()) - {0}) for clip in clips for frame in clip["segmentation"]]
    assert 1 in visible and max(visible) > 1  # both cases occur
    with_foreground = [n for n in visible if n > 0]
    assert one_slot_ari == pytest.approx(sum(n == 1 for n in with_foreground) / len(with_foreground))
    squares = torch.cat([clip["video"].flatten() for clip in clips]).double().square()
    assert mse == pytest.approx(squares.mean().item(), rel=1e-5)


def flat_frame(colours: dict[int, tuple[float, float, float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1-frame clip (1, 3, 8, 8) of a grey floor and three 2x2 squares, and its segmentation
    (1, 8, 8): square k (1..3) painted ``colours[k]``."""
    video = torch.full((1, 3, 8, 8), 0.5)
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    for k, (y, x) in zip((1, 2, 3), [(1, 1), (1, 5), (5, 3)], strict=True):
        video[0, :, y : y + 2, x : x + 2] = torch.tensor(colours[k])[:, None, None]
        labels[0, y : y + 2, x : x + 2] = k
    return video, labels


def test_kmeans_on_colour_separates_distinct_colours_and_merges_equal_ones():
    from attnlab.metrics.segmentation import fg_ari

    kmeans = runpy.run_path(str(SCRIPT))["kmeans_masks"]
    red, green, blue = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
    video, labels = flat_frame({1: red, 2: green, 3: blue})
    masks = kmeans(video, 4, 0.0)  # floor and three colours: one cluster each
    assert masks.shape == (1, 4, 8, 8) and torch.equal(masks.sum(1), torch.ones(1, 8, 8))
    assert fg_ari(masks, labels).item() == pytest.approx(1.0)
    video, labels = flat_frame({1: red, 2: red, 3: blue})  # two objects of one colour
    merged = fg_ari(kmeans(video, 4, 0.0), labels).item()
    # by hand: squares 1 and 2 share a cluster; of the C(12, 2) = 66 foreground pairs, 16 cross
    # squares 1-2 and are joined wrongly; the adjusted index of that partition
    expected = adjusted_rand(torch.tensor([0] * 8 + [1] * 4), torch.tensor([0] * 4 + [1] * 4 + [2] * 4))
    assert merged == pytest.approx(expected) and merged < 1


def adjusted_rand(found: torch.Tensor, truth: torch.Tensor) -> float:
    """The adjusted Rand index from its pair-count formula (Hubert & Arabie 1985), in float64."""

    def pairs(counts: torch.Tensor) -> torch.Tensor:
        return (counts * (counts - 1) / 2).sum()

    table = torch.zeros(int(found.max()) + 1, int(truth.max()) + 1, dtype=torch.float64)
    table.index_put_((found, truth), torch.ones(len(found), dtype=torch.float64), accumulate=True)
    index, rows, cols = pairs(table), pairs(table.sum(1)), pairs(table.sum(0))
    expected = rows * cols / pairs(torch.tensor(float(len(found))))
    return ((index - expected) / ((rows + cols) / 2 - expected)).item()


def test_kmeans_on_chromaticity_keeps_a_lit_and_shaded_object_whole(one_thread):
    references = runpy.run_path(str(SCRIPT))["clip_references"]
    video = torch.full((1, 3, 8, 8), 0.5)  # a grey floor
    video[0, :, 2:6, 2:4] = torch.tensor([0.8, 0.4, 0.2])[:, None, None]  # the lit side
    video[0, :, 2:6, 4:6] = torch.tensor([0.4, 0.2, 0.1])[:, None, None]  # the same colour, shaded
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[0, 2:6, 2:6] = 1
    clips = [{"video": video, "segmentation": labels}] * 2
    # two clusters: in rgb the lit side is nearer the floor than the shaded side (0.44 against 0.46)
    rgb = references(clips, (), 2, (0.0,), "rgb")[-1]
    chroma = references(clips, (), 2, (0.0,), "chromaticity")[-1]
    # one object: FG-ARI is 1 when it lies in one cluster, 0 when cut into its two sides
    assert (rgb, chroma) == (pytest.approx(0.0), pytest.approx(1.0))
    # the matched IoU instead: in rgb the object's best cluster is its shaded half (8 of its 16
    # pixels, the lit half in the floor's cluster), in chromaticity its own cluster
    miou = runpy.run_path(str(SCRIPT))["hungarian_miou"]
    rgb = references(clips, (), 2, (0.0,), "rgb", 0.0, miou)[-1]
    chroma = references(clips, (), 2, (0.0,), "chromaticity", 0.0, miou)[-1]
    assert (rgb, chroma) == (pytest.approx(0.5), pytest.approx(1.0))


def test_kmeans_with_the_motion_target_parts_two_objects_of_one_colour_that_move_apart(one_thread):
    references = runpy.run_path(str(SCRIPT))["clip_references"]
    video = torch.full((2, 3, 8, 8), 0.5)  # (T, 3, H, W): a grey floor
    masks = torch.zeros(2, 3, 8, 8)  # (T, 1 + K, H, W)
    masks[:, 1, 0:2, 0:2] = 1  # object 1 stays
    masks[0, 2, 5:7, 2:4] = 1  # object 2 moves two columns right
    masks[1, 2, 5:7, 4:6] = 1
    masks[:, 0] = 1 - masks[:, 1:].sum(1)
    red = torch.tensor([0.9, 0.2, 0.2])[None, :, None, None]
    video = torch.where(masks[:, None, 1:].sum(2) > 0, red, video)  # both objects the same red
    clips = [{"video": video, "segmentation": masks.argmax(1), "masks": masks}]
    still = references(clips, (), 3, (0.0,), "chromaticity")[-1]
    moving = references(clips, (), 3, (0.0,), "chromaticity", 4.0)[-1]
    # frame 1 has no motion (one cluster holds both, FG-ARI 0); in frame 2 the motion parts them (1)
    assert (still, moving) == (pytest.approx(0.0), pytest.approx(0.5))
