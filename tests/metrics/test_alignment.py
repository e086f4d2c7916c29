"""The sequence and alignment scores against values worked out by hand."""

import pytest
import torch

from attnlab.errors import InputError
from attnlab.metrics.alignment import (
    alignment_accuracy,
    alignment_error_rate,
    alignment_mass,
    argmax_links,
    exact_match,
    known_links,
    token_accuracy,
)


def test_exact_match_and_token_accuracy_leave_padding_out():
    target = torch.tensor([[5, 6, 2, 0], [7, 8, 9, 2]])
    pred = torch.tensor([[5, 6, 2, 4], [7, 3, 9, 2]])  # row 0 wrong only at padding; row 1 one miss
    padding = torch.tensor([[False, False, False, True], [False, False, False, False]])
    assert exact_match(pred, target, padding).tolist() == [1.0, 0.0]
    assert token_accuracy(pred, target, padding).item() == pytest.approx(6 / 7)


def test_alignment_accuracy_mass_and_links_by_hand():
    weights = torch.tensor(
        [
            [[0.1, 0.2, 0.7], [0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4]],
        ]
    )  # (1, T=4, S=3)
    alignment = torch.tensor([[2, 1, 0, -1]])  # the last target token (EOS) aligns to nothing
    # argmaxes 2, 0, 1: one of three right
    assert alignment_accuracy(weights, alignment).item() == pytest.approx(1 / 3)
    assert alignment_mass(weights, alignment).item() == pytest.approx((0.7 + 0.3 + 0.2) / 3)
    links = argmax_links(weights, alignment)
    assert links[0].nonzero().tolist() == [[0, 2], [1, 0], [2, 1]]  # no link for the EOS row
    assert known_links(alignment, 3)[0].nonzero().tolist() == [[0, 2], [1, 1], [2, 0]]


def test_aer_by_hand_with_sure_and_possible_links():
    sure = torch.zeros(1, 3, 3, dtype=torch.bool)
    sure[0, 0, 0] = sure[0, 1, 1] = True  # |S| = 2
    possible = sure.clone()
    possible[0, 2, 2] = True  # P = S + one
    predicted = torch.zeros(1, 3, 3, dtype=torch.bool)
    predicted[0, 0, 0] = predicted[0, 2, 2] = predicted[0, 2, 1] = True  # |A| = 3
    # |A&S| = 1, |A&P| = 2: AER = 1 - (1 + 2) / (3 + 2) = 0.4
    assert alignment_error_rate(predicted, sure, possible).item() == pytest.approx(0.4)
    # P = S: 1 - (1 + 1) / 5
    assert alignment_error_rate(predicted, sure).item() == pytest.approx(0.6)
    assert alignment_error_rate(sure, sure).item() == 0.0
    with pytest.raises(InputError, match="sure link must also be a possible"):
        alignment_error_rate(predicted, possible, sure)


def test_bad_shapes_are_one_line():
    with pytest.raises(InputError, match="alignment long"):
        alignment_accuracy(torch.rand(2, 3, 4), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(InputError, match="past the 4 source positions"):
        alignment_accuracy(torch.rand(2, 3, 4), torch.full((2, 3), 4))
