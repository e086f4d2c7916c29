"""Image Transformer local 1D block attention: equal to dense attention with the equivalent mask."""

from __future__ import annotations

import pytest
import torch

from attnlab.errors import InputError
from attnlab.explain.capture import capture
from attnlab.layers.attention import MultiHeadAttention
from attnlab.layers.block_attention import LocalBlockSelfAttention1d


def dense_twin(layer: LocalBlockSelfAttention1d) -> MultiHeadAttention:
    twin = MultiHeadAttention(layer.dim, num_heads=layer.num_heads).to(layer.q_proj.weight.dtype)
    twin.load_state_dict(layer.state_dict())
    return twin


def test_dense_mask_by_hand() -> None:
    layer = LocalBlockSelfAttention1d(8, num_heads=2, query_block=2, memory=1)
    expected = torch.tensor(
        [
            [1, 0, 0, 0, 0],  # block 0 = {0, 1}, memory none before 0
            [1, 1, 0, 0, 0],
            [0, 1, 1, 0, 0],  # block 1 = {2, 3}, memory {1}
            [0, 1, 1, 1, 0],
            [0, 0, 0, 1, 1],  # block 2 = {4}, memory {3}
        ],
        dtype=torch.bool,
    )
    assert torch.equal(layer.dense_mask(5), expected)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize(("length", "query_block", "memory"), [(13, 4, 3), (12, 4, 0), (7, 8, 5), (16, 3, 7)])
def test_equals_dense_attention_with_the_equivalent_mask(
    causal: bool, length: int, query_block: int, memory: int
) -> None:
    torch.manual_seed(0)
    layer = LocalBlockSelfAttention1d(
        8, num_heads=2, query_block=query_block, memory=memory, causal=causal
    ).double()
    x = torch.randn(2, length, 8, dtype=torch.float64, requires_grad=True)
    mask = layer.dense_mask(length)
    twin = dense_twin(layer)
    with capture(layer) as rec, capture(twin) as rec_dense:
        out, ref = layer(x), twin(x, attn_mask=mask)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(rec[""], rec_dense[""])
    grad = torch.randn_like(out)
    torch.testing.assert_close(torch.autograd.grad(out, x, grad)[0], torch.autograd.grad(ref, x, grad)[0])


def test_differentiable_capture_gives_the_same_output() -> None:
    torch.manual_seed(1)
    layer = LocalBlockSelfAttention1d(8, num_heads=2, query_block=3, memory=2).double()
    x = torch.randn(1, 10, 8, dtype=torch.float64)
    with capture(layer, differentiable=True) as rec:
        out = layer(x)
    torch.testing.assert_close(out, layer(x))
    assert rec[""].requires_grad and rec[""].shape == (1, 2, 10, 10)


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="query_block"):
        LocalBlockSelfAttention1d(8, num_heads=2, query_block=0, memory=1)
