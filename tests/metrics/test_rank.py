"""Effective rank: hand-computed cases and a NumPy float64 computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attnlab.errors import InputError
from attnlab.metrics.rank import effective_rank


def test_features_spread_evenly_over_k_orthogonal_directions_have_rank_k():
    basis = torch.linalg.qr(torch.randn(16, 16, dtype=torch.float64))[0]
    for k in (1, 3, 7):
        signs = torch.tensor([1.0, -1.0], dtype=torch.float64).repeat_interleave(k)  # (2k,)
        rows = signs[:, None] * basis[:k].repeat(2, 1) + 5.0  # +-each direction, plus an offset
        assert effective_rank(rows) == pytest.approx(k, rel=1e-9)


def test_uneven_spread_matches_the_entropy_of_the_singular_values():
    # singular values 3 and 1 along two axes: p = (3/4, 1/4), rank exp(H(p))
    rows = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    p = np.array([0.75, 0.25])
    assert effective_rank(rows) == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-9)


def test_random_features_agree_with_numpy_in_float64():
    x = torch.randn(200, 12) @ torch.randn(12, 12)
    s = np.linalg.svd((x - x.mean(0)).double().numpy(), compute_uv=False)
    p = s / s.sum()
    assert effective_rank(x) == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-9)


def test_constant_features_and_bad_inputs():
    assert effective_rank(torch.ones(5, 3)) == 1.0
    assert effective_rank(torch.randn(1, 3)) == 1.0
    with pytest.raises(InputError, match=r"float \(M >= 1, D\) features, got \(0, 3\)"):
        effective_rank(torch.ones(0, 3))
    with pytest.raises(InputError, match=r"got \(3,\)"):
        effective_rank(torch.ones(3))
