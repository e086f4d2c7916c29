"""Sliding windows, FFT input and the combination of window scores, against hand values and numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attnlab.models.signals.windows import combine, fft_magnitude, overlap_mean, window_starts


def test_window_starts_follow_the_thesis() -> None:
    assert window_starts(100, 64, 10) == [0, 10, 20, 30]  # the tail 94..99 is not read
    assert window_starts(64, 64, 10) == [0]
    assert window_starts(63, 64, 10) == []


def test_fft_magnitude_matches_numpy() -> None:
    x = torch.randn(2, 3, 64, dtype=torch.float64)
    expected = np.abs(np.fft.rfft(x.numpy(), axis=-1)) / math.sqrt(64)
    np.testing.assert_allclose(fft_magnitude(x).numpy(), expected, rtol=1e-12, atol=1e-12)


def test_combine_mean_and_vote_by_hand() -> None:
    # two windows, three classes; window probabilities [0.7, 0.2, 0.1] and [0.1, 0.5, 0.4]
    p = torch.tensor([[[0.7, 0.2, 0.1], [0.1, 0.5, 0.4]]], dtype=torch.float64)
    logits = p.log()
    torch.testing.assert_close(
        combine(logits, "mean").exp(), torch.tensor([[0.4, 0.35, 0.25]], dtype=torch.float64)
    )
    # one vote each for classes 0 and 1, the tie broken by the mean: (votes + mean) / 3
    vote = combine(logits, "vote").exp()
    torch.testing.assert_close(vote, torch.tensor([[1.4, 1.35, 0.25]], dtype=torch.float64) / 3)
    assert vote.argmax().item() == 0


def test_vote_differs_from_mean_when_one_window_is_confident() -> None:
    p = torch.tensor([[[0.98, 0.01, 0.01], [0.3, 0.4, 0.3], [0.3, 0.4, 0.3]]])
    assert combine(p.log(), "mean").argmax().item() == 0  # mean 0.527 for class 0
    assert combine(p.log(), "vote").argmax().item() == 1  # two votes for class 1


def test_overlap_mean_by_hand() -> None:
    values = torch.tensor([[[1.0, 1.0, 1.0, 1.0], [3.0, 3.0, 3.0, 3.0]]])  # windows at 0 and 2, width 4
    got = overlap_mean(values, 7, 4, 2)
    expected = torch.tensor([[1.0, 1.0, 2.0, 2.0, 3.0, 3.0, float("nan")]])
    torch.testing.assert_close(got, expected, equal_nan=True)


@pytest.mark.parametrize("how", ["mean", "vote"])
def test_combine_returns_log_probabilities(how: str) -> None:
    logits = torch.randn(4, 5, 6)
    torch.testing.assert_close(combine(logits, how).exp().sum(-1), torch.ones(4))  # type: ignore[arg-type]
