"""Image Transformer local 2D block attention: the mask by hand, and equal to dense attention
with the equivalent mask (outputs, gradients, recorded weights)."""

from __future__ import annotations

import pytest
import torch

from attnlab.errors import InputError
from attnlab.explain.capture import capture
from attnlab.layers.attention import MultiHeadAttention
from attnlab.layers.block_attention2d import LocalBlockSelfAttention2d


def dense_twin(layer: LocalBlockSelfAttention2d) -> MultiHeadAttention:
    twin = MultiHeadAttention(layer.dim, num_heads=layer.num_heads).to(layer.q_proj.weight.dtype)
    twin.load_state_dict(layer.state_dict())
    return twin


def test_dense_mask_by_hand() -> None:
    """4 x 4 image, query blocks 2 x 2, memory 1 row above and 1 column each side; the query at
    pixel (2, 2) (block (1, 1), its first pixel) and the one at (3, 1) (block (1, 0), its last)."""
    layer = LocalBlockSelfAttention2d(8, num_heads=2, query_block=(2, 2), memory=(1, 1))
    mask = layer.dense_mask(4, 4).view(4, 4, 4, 4)  # (query row, query col, key row, key col)
    first_of_block_11 = torch.tensor(
        [
            [0, 0, 0, 0],
            [0, 1, 1, 1],  # the row above the block, columns 1-3 (3 is the right flange)
            [0, 1, 1, 0],  # (2, 1) left flange in block (1, 0), before; (2, 2) itself; (2, 3) after
            [0, 1, 0, 0],  # (3, 1) is in block (1, 0), before; (3, 2), (3, 3) come after
        ],
        dtype=torch.bool,
    )
    assert torch.equal(mask[2, 2], first_of_block_11)
    last_of_block_10 = torch.tensor(
        [[0, 0, 0, 0], [1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 0, 0]], dtype=torch.bool
    )  # right flange column 2: (1, 2) is an earlier block row; (2, 2), (3, 2) are in block (1, 1), later
    assert torch.equal(mask[3, 1], last_of_block_10)
    non_causal = LocalBlockSelfAttention2d(8, num_heads=2, query_block=(2, 2), memory=(1, 1), causal=False)
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[1:4, 1:4] = True  # the whole memory block of block (1, 1), inside the image
    assert torch.equal(non_causal.dense_mask(4, 4).view(4, 4, 4, 4)[2, 2], expected)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize(
    ("size", "query_block", "memory"),
    [((4, 4), (2, 2), (1, 1)), ((5, 7), (2, 3), (2, 1)), ((6, 4), (3, 4), (0, 0)), ((3, 5), (4, 2), (1, 3))],
)
def test_equals_dense_attention_with_the_equivalent_mask(
    causal: bool, size: tuple[int, int], query_block: tuple[int, int], memory: tuple[int, int]
) -> None:
    torch.manual_seed(0)
    layer = LocalBlockSelfAttention2d(
        8, num_heads=2, query_block=query_block, memory=memory, causal=causal
    ).double()
    x = torch.randn(2, *size, 8, dtype=torch.float64, requires_grad=True)
    twin = dense_twin(layer)
    mask = layer.dense_mask(*size)
    with capture(layer) as rec, capture(twin) as rec_dense:
        out, ref = layer(x), twin(x.flatten(1, 2), attn_mask=mask).view_as(x)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(rec[""], rec_dense[""])
    grad = torch.randn_like(out)
    torch.testing.assert_close(torch.autograd.grad(out, x, grad)[0], torch.autograd.grad(ref, x, grad)[0])


def test_differentiable_capture_gives_the_same_output() -> None:
    torch.manual_seed(1)
    layer = LocalBlockSelfAttention2d(8, num_heads=2, query_block=(2, 3), memory=(1, 1)).double()
    x = torch.randn(1, 5, 6, 8, dtype=torch.float64)
    with capture(layer, differentiable=True) as rec:
        out = layer(x)
    torch.testing.assert_close(out, layer(x))
    assert rec[""].requires_grad and rec[""].shape == (1, 2, 30, 30)


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="query_block"):
        LocalBlockSelfAttention2d(8, num_heads=2, query_block=(0, 2), memory=(1, 1))
    layer = LocalBlockSelfAttention2d(8, num_heads=2, query_block=(2, 2), memory=(1, 1))
    with pytest.raises(InputError, match=r"\(B, H, W, 8\)"):
        layer(torch.randn(2, 16, 8))
