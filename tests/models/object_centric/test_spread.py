"""Each slot's spread around its own fit, and the compactness asked of every slot but the background."""

import pytest
import torch

from attnlab.errors import InputError
from attnlab.models.object_centric.spread import slot_compactness, slot_spread


def row_masks(*slots: list[float]) -> torch.Tensor:
    """One frame one pixel high, a row of masks per slot -> (1, 1, K, 1, 1, W)."""
    masks = torch.tensor(slots, dtype=torch.float32)  # (K, W)
    return masks.view(1, 1, *masks.shape[:1], 1, 1, masks.shape[1])


def test_two_objects_far_apart_in_one_slot_pay_their_distance_and_the_background_is_free():
    """A row of 5 pixels at x = 0, 1/4, 1/2, 3/4, 1: the background holds the middle three; the two
    ends in one slot are each 1/2 from its centre, 2 * (1/2)^2; in a slot each, 0. The background's
    own spread (2 * (1/4)^2) is not counted."""
    together = row_masks([0, 1, 1, 1, 0], [1, 0, 0, 0, 1], [0, 0, 0, 0, 0])
    apart = row_masks([0, 1, 1, 1, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 1])
    assert slot_compactness(together).item() == pytest.approx(0.5)
    assert slot_compactness(apart).item() == pytest.approx(0.0)
    # the spread of every slot, the background's included
    assert slot_spread(together, torch.linspace(0, 1, 5).view(1, 1, 1, 1, 5))[0, 0].tolist() == pytest.approx(
        [0.125, 0.5, 0.0]
    )


def test_the_largest_slot_of_each_frame_is_the_one_left_free():
    """The same two ends with the background in slot 2 this time: the largest slot is exempt, wherever
    it is, and with the ends taking the most pixels they are the background instead."""
    moved = row_masks([1, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 1, 1, 1, 0])
    assert slot_compactness(moved).item() == pytest.approx(0.5)
    ends_largest = row_masks([1, 1, 0, 1, 1], [0, 0, 1, 0, 0])  # the ends and their neighbours: 4 pixels
    assert slot_compactness(ends_largest).item() == pytest.approx(0.0)


def test_without_the_free_background_every_slot_pays():
    """The first test's row: the background's middle three pixels are 1/4 from its centre at 1/2, so
    it adds 2 * (1/4)^2 to the ends' 2 * (1/2)^2 in one slot, and alone when they are apart."""
    together = row_masks([0, 1, 1, 1, 0], [1, 0, 0, 0, 1], [0, 0, 0, 0, 0])
    apart = row_masks([0, 1, 1, 1, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 1])
    assert slot_compactness(together, free_background=False).item() == pytest.approx(0.625)
    assert slot_compactness(apart, free_background=False).item() == pytest.approx(0.125)


def test_the_compactness_matches_a_float64_loop():
    torch.manual_seed(0)
    masks = torch.rand(2, 3, 4, 1, 5, 6).softmax(dim=2)  # (B, T, K, 1, H, W)
    m = masks.double()[:, :, :, 0]
    ys, xs = torch.meshgrid(torch.linspace(0, 1, 5).double(), torch.linspace(0, 1, 6).double(), indexing="ij")
    want = torch.zeros(2, 3, dtype=torch.float64)
    for b in range(2):
        for t in range(3):
            background = max(range(4), key=lambda k: m[b, t, k].sum().item())
            for k in set(range(4)) - {background}:
                w = m[b, t, k]
                cy, cx = (w * ys).sum() / w.sum(), (w * xs).sum() / w.sum()
                want[b, t] += (w * ((ys - cy) ** 2 + (xs - cx) ** 2)).sum()
    torch.testing.assert_close(slot_compactness(masks).double(), want, rtol=1e-5, atol=1e-6)


def test_the_inputs_are_checked():
    with pytest.raises(InputError, match=r"masks must be \(B, T, K, 1, H, W\)"):
        slot_compactness(torch.rand(1, 2, 3, 4, 4))
    with pytest.raises(InputError, match="features must be"):
        slot_spread(torch.rand(1, 2, 3, 1, 4, 4), torch.rand(1, 2, 2, 4, 5))


def test_the_spread_of_any_feature_matches_a_float64_loop():
    torch.manual_seed(1)
    masks = torch.rand(2, 3, 4, 1, 5, 6).softmax(dim=2)  # (B, T, K, 1, H, W)
    features = torch.rand(2, 3, 3, 5, 6)  # (B, T, C, H, W): a colour
    m, f = masks.double()[:, :, :, 0], features.double()
    want = torch.zeros(2, 3, 4, dtype=torch.float64)
    for b in range(2):
        for t in range(3):
            for k in range(4):
                w = m[b, t, k]
                for c in range(3):
                    mu = (w * f[b, t, c]).sum() / w.sum()
                    want[b, t, k] += (w * (f[b, t, c] - mu) ** 2).sum()
    torch.testing.assert_close(slot_spread(masks, features).double(), want, rtol=1e-5, atol=1e-6)
