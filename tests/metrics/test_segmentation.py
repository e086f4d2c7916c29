"""FG-ARI and Hungarian mIoU: against an independent ARI (sklearn when installed, else exact
rational arithmetic below) and brute-force matching, hand-computed values, and edge cases."""

from __future__ import annotations

import itertools
from fractions import Fraction
from math import comb

import numpy as np
import pytest
import torch

from attnlab.errors import InputError
from attnlab.metrics.segmentation import fg_ari, hungarian_miou

try:
    from sklearn.metrics import adjusted_rand_score
except ImportError:  # sklearn is not a dependency
    adjusted_rand_score = None


def _exact_ari(true: np.ndarray, pred: np.ndarray) -> float:
    """Hubert-Arabie ARI from the contingency table, in exact rationals."""
    pairs = list(zip(true.tolist(), pred.tolist(), strict=True))
    cells = {p: pairs.count(p) for p in set(pairs)}
    index = sum(comb(c, 2) for c in cells.values())
    rows = sum(comb(int((true == t).sum()), 2) for t in set(true.tolist()))
    cols = sum(comb(int((pred == p).sum()), 2) for p in set(pred.tolist()))
    expected = Fraction(rows * cols, comb(len(true), 2))
    return float((index - expected) / (Fraction(rows + cols, 2) - expected))


def _reference_ari(true: np.ndarray, pred: np.ndarray) -> float:
    if adjusted_rand_score is not None:
        return float(adjusted_rand_score(true, pred))
    return _exact_ari(true, pred)


def _masks_from_ids(ids: list[list[int]], num_slots: int) -> torch.Tensor:
    """Hard (1, K, H, W) masks from a slot id per pixel."""
    grid = torch.tensor(ids)
    return torch.nn.functional.one_hot(grid, num_slots).permute(2, 0, 1)[None].bool()


def _random_case(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    soft = torch.rand(2, 3, 5, 8, 8, generator=gen).softmax(dim=2)  # (B, T, K, H, W)
    labels = torch.randint(0, 4, (2, 3, 8, 8), generator=gen)
    return soft, labels


# ----------------------------------------------------------------------------- FG-ARI


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fg_ari_matches_reference_per_frame(seed: int) -> None:
    soft, labels = _random_case(seed)
    got = fg_ari(soft, labels)
    assert got.shape == (2, 3) and got.dtype == torch.float64
    pred = soft.argmax(dim=2)
    for b, t in itertools.product(range(2), range(3)):
        fg = labels[b, t] != 0
        expected = _reference_ari(labels[b, t][fg].numpy(), pred[b, t][fg].numpy())
        assert got[b, t].item() == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_ari_with_background_included_uses_all_pixels() -> None:
    soft, labels = _random_case(3)
    got = fg_ari(soft, labels, background=None)
    pred = soft.argmax(dim=2)
    for b, t in itertools.product(range(2), range(3)):
        expected = _reference_ari(labels[b, t].flatten().numpy(), pred[b, t].flatten().numpy())
        assert got[b, t].item() == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_fg_ari_hand_computed() -> None:
    # Foreground: true [a a b b], predicted [0 0 1 2]. Pairs together in both: 1; true pairs 2,
    # predicted pairs 1, all pairs 6: expected 1/3, max 3/2, ARI (1 - 1/3) / (3/2 - 1/3) = 4/7.
    # The fifth pixel is background, whatever slot it falls in.
    labels = torch.tensor([[5, 5, 7, 7, 0]])
    for bg_slot in (0, 1, 2):
        masks = _masks_from_ids([[0, 0, 1, 2, bg_slot]], num_slots=3)[0]
        assert fg_ari(masks, labels).item() == pytest.approx(4 / 7, rel=1e-12)


def test_fg_ari_is_invariant_to_slot_order() -> None:
    soft, labels = _random_case(4)
    permuted = soft[:, :, torch.tensor([3, 0, 4, 1, 2])]
    assert torch.equal(fg_ari(permuted, labels), fg_ari(soft, labels))


def test_fg_ari_perfect_and_split_object() -> None:
    labels = torch.tensor([[0, 1, 1], [0, 2, 2]])
    perfect = _masks_from_ids([[2, 0, 0], [2, 1, 1]], num_slots=3)[0]
    assert fg_ari(perfect, labels).item() == 1.0
    # One true object split over two slots: the index equals its expectation, ARI 0.
    one_object = torch.tensor([[1, 1], [1, 1]])
    split = _masks_from_ids([[0, 0], [1, 1]], num_slots=2)[0]
    assert fg_ari(split, one_object).item() == 0.0


def test_fg_ari_edge_cases() -> None:
    masks = _masks_from_ids([[0, 1], [1, 1]], num_slots=2)[0]
    assert torch.isnan(fg_ari(masks, torch.zeros(2, 2, dtype=torch.long))).item()  # no foreground
    assert fg_ari(masks, torch.tensor([[3, 0], [0, 0]])).item() == 1.0  # one foreground pixel
    # Both partitions all singletons: identical, ARI 1 (as sklearn), although 0/0 by formula.
    singletons = _masks_from_ids([[0, 1], [2, 3]], num_slots=4)[0]
    assert fg_ari(singletons, torch.tensor([[1, 2], [3, 4]])).item() == 1.0


def test_soft_and_hard_masks_agree() -> None:
    soft, labels = _random_case(5)
    hard = torch.nn.functional.one_hot(soft.argmax(dim=2), 5).permute(0, 1, 4, 2, 3).bool()
    assert torch.equal(fg_ari(hard, labels), fg_ari(soft, labels))
    assert torch.equal(hungarian_miou(hard, labels), hungarian_miou(soft, labels))


def test_true_ids_can_be_any_integers() -> None:
    soft, labels = _random_case(9)
    sparse = torch.where(labels == 0, 0, labels * 10**12)  # too sparse to count: sorted instead
    shifted = labels - 3  # negative ids, background -3
    for metric in (fg_ari, hungarian_miou):
        base = metric(soft, labels)
        assert torch.equal(metric(soft, sparse), base)
        assert torch.equal(metric(soft, shifted, background=-3), base)


# ----------------------------------------------------------------------------- mIoU


def _brute_force_miou(labels: torch.Tensor, pred: torch.Tensor, num_slots: int) -> float:
    objects = [o for o in labels.unique().tolist() if o != 0]
    ious = [
        [
            ((labels == o) & (pred == k)).sum().item() / ((labels == o) | (pred == k)).sum().item()
            for k in range(num_slots)
        ]
        for o in objects
    ]
    best = max(
        sum(row[k] for row, k in zip(ious, perm, strict=False))
        for perm in itertools.permutations(range(num_slots), min(len(objects), num_slots))
    )
    return best / len(objects)


def test_miou_matches_brute_force_assignment() -> None:
    soft, labels = _random_case(6)
    got = hungarian_miou(soft, labels)
    pred = soft.argmax(dim=2)
    for b, t in itertools.product(range(2), range(3)):
        expected = _brute_force_miou(labels[b, t], pred[b, t], num_slots=5)
        assert got[b, t].item() == pytest.approx(expected, rel=1e-12)


def test_miou_hand_computed() -> None:
    # Object 1 = pixels 0-1, object 2 = pixels 2-3; slot 0 = pixels 0-2, slot 1 = pixel 3.
    # IoUs: (1, slot 0) 2/3, (2, slot 1) 1/2, (2, slot 0) 1/4, (1, slot 1) 0 -> (2/3 + 1/2) / 2.
    masks = _masks_from_ids([[0, 0, 0, 1]], num_slots=2)[0]
    labels = torch.tensor([[1, 1, 2, 2]])
    assert hungarian_miou(masks, labels).item() == pytest.approx(7 / 12, rel=1e-12)


def test_miou_fewer_slots_than_objects_counts_unmatched_as_zero() -> None:
    one_slot = torch.ones(1, 1, 4)
    labels = torch.tensor([[1, 1, 2, 2]])
    assert hungarian_miou(one_slot, labels).item() == pytest.approx(0.25, rel=1e-12)  # (1/2 + 0) / 2


def test_miou_background_convention() -> None:
    masks = _masks_from_ids([[0, 0, 1, 1]], num_slots=2)[0]
    labels = torch.tensor([[1, 1, 0, 0]])
    assert hungarian_miou(masks, labels).item() == 1.0  # background ignored
    assert hungarian_miou(masks, labels, background=None).item() == 1.0  # background an object
    shifted = _masks_from_ids([[0, 1, 1, 1]], num_slots=2)[0]
    assert hungarian_miou(shifted, labels).item() == pytest.approx(0.5)  # only object 1: 1/2
    assert hungarian_miou(shifted, labels, background=None).item() == pytest.approx((0.5 + 2 / 3) / 2)
    assert torch.isnan(hungarian_miou(masks, torch.zeros(1, 4, dtype=torch.long))).item()


def test_miou_is_invariant_to_slot_order() -> None:
    soft, labels = _random_case(7)
    permuted = soft[:, :, torch.tensor([4, 2, 0, 3, 1])]
    assert torch.equal(hungarian_miou(permuted, labels), hungarian_miou(soft, labels))


# ----------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("metric", [fg_ari, hungarian_miou])
def test_bad_inputs(metric: object) -> None:
    soft, labels = _random_case(8)
    cases = [
        (soft, labels[..., :4], "shape"),
        (soft, labels.float(), "integer"),
        (soft.long(), labels, "floating"),
        (soft * torch.nan, labels, "NaN"),
        (soft[0, 0, 0, 0], labels[0, 0, 0], r"\(\.\.\., K, H, W\)"),
        (soft[..., :0], labels[..., :0], "non-empty"),
    ]
    for pred, true, match in cases:
        with pytest.raises(InputError, match=match) as info:
            metric(pred, true)  # type: ignore[operator]
        assert "\n" not in str(info.value)
