"""The unfold-free 1D aggregation against the unfold-based one and float64 finite differences."""

from __future__ import annotations

import pytest
import torch

from attnlab.layers._aggregation import aggregate_1d
from attnlab.layers.pairwise import footprint


def unfolded(values: torch.Tensor, weights: torch.Tensor, kernel_size: int, dilation: int) -> torch.Tensor:
    v = footprint(values, kernel_size, dilation)  # (B, C, K, N)
    B, C, K, N = v.shape
    A = weights.shape[1]
    return (v.view(B, C // A, A, K, N) * weights[:, None]).sum(3).reshape(B, C, N)


@pytest.mark.parametrize(("kernel_size", "dilation"), [(3, 1), (3, 5), (5, 2)])
def test_equals_the_unfold_based_aggregation_and_its_gradients(kernel_size: int, dilation: int) -> None:
    torch.manual_seed(0)
    values = torch.randn(2, 6, 13, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(2, 3, kernel_size, 13, dtype=torch.float64, requires_grad=True)
    ours = aggregate_1d(values, weights, kernel_size, dilation)
    ref = unfolded(values, weights, kernel_size, dilation)
    torch.testing.assert_close(ours, ref)
    grad = torch.randn_like(ours)
    got = torch.autograd.grad(ours, (values, weights), grad)
    want = torch.autograd.grad(ref, (values, weights), grad)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)


def test_by_hand() -> None:
    # N = 4, K = 3, dilation 1; position 0 reads [1, 0, 1] (reflected), position 3 reads [2, 3, 2]
    values = torch.tensor([[[10.0, 20.0, 30.0, 40.0]]])
    weights = torch.zeros(1, 1, 3, 4)
    weights[0, 0, :, 0] = torch.tensor([0.5, 0.25, 0.25])  # 0.5 * 20 + 0.25 * 10 + 0.25 * 20
    weights[0, 0, :, 3] = torch.tensor([0.0, 0.0, 1.0])  # the reflected right neighbour: 30
    out = aggregate_1d(values, weights, 3, 1)
    assert out[0, 0, 0].item() == pytest.approx(17.5) and out[0, 0, 3].item() == pytest.approx(30.0)


def test_gradcheck() -> None:
    torch.manual_seed(1)
    values = torch.randn(1, 4, 7, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(1, 2, 3, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, w: aggregate_1d(v, w, 3, 2), (values, weights))
