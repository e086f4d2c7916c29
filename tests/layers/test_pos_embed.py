"""Position embeddings against hand-computed sines and cosines and exact interpolation cases."""

import math

import pytest
import torch

from attnlab.errors import InputError
from attnlab.layers.pos_embed import (
    LearnedPositionEmbedding,
    SinusoidalPositionEmbedding,
    SoftPositionEmbedding,
    sincos_from_positions,
    sincos_pos_embed,
    sincos_pos_embed_1d,
    sincos_pos_embed_2d,
    sincos_pos_embed_3d,
)


def by_hand(p: float, d: int) -> list[float]:
    """[sin(p w_0), .., sin(p w_{d/2-1}), cos(p w_0), ..] with w_i = 10000^(-2i/d), via math."""
    omegas = [10000 ** (-2 * i / d) for i in range(d // 2)]
    return [math.sin(p * w) for w in omegas] + [math.cos(p * w) for w in omegas]


def test_1d_values_at_positions_0_and_1_dim_4():
    emb = sincos_pos_embed_1d(2, 4, dtype=torch.float64)
    assert emb.shape == (2, 4)
    # position 0: sin = 0, cos = 1; position 1: frequencies 1 and 1/100
    expected = torch.tensor(
        [[0.0, 0.0, 1.0, 1.0], [math.sin(1), math.sin(0.01), math.cos(1), math.cos(0.01)]]
    )
    torch.testing.assert_close(emb, expected.double())


def test_1d_matches_formula_for_more_positions_and_fractional_positions():
    emb = sincos_pos_embed_1d(7, 8, dtype=torch.float64)
    torch.testing.assert_close(emb, torch.tensor([by_hand(p, 8) for p in range(7)], dtype=torch.float64))
    frac = sincos_from_positions(torch.tensor([0.5, 2.25]), 6)
    torch.testing.assert_close(frac, torch.tensor([by_hand(0.5, 6), by_hand(2.25, 6)], dtype=torch.float64))


def test_2d_is_row_then_column_1d_embeddings():
    H, W, D = 3, 5, 8
    emb = sincos_pos_embed_2d(H, W, D)
    assert emb.shape == (H, W, D) and emb.dtype == torch.float32
    for h in range(H):
        for w in range(W):
            expected = torch.tensor(by_hand(h, D // 2) + by_hand(w, D // 2))
            torch.testing.assert_close(emb[h, w], expected)


def test_3d_is_time_row_column_even_split_and_custom_split():
    T, H, W = 2, 3, 4
    emb = sincos_pos_embed_3d(T, H, W, 12, dtype=torch.float64)
    assert emb.shape == (T, H, W, 12)
    t, h, w = 1, 2, 3
    torch.testing.assert_close(
        emb[t, h, w], torch.tensor(by_hand(t, 4) + by_hand(h, 4) + by_hand(w, 4)).double()
    )
    # V-JEPA's default split gives half the dims to time
    vj = sincos_pos_embed_3d(T, H, W, 16, axis_dims=(8, 4, 4), dtype=torch.float64)
    torch.testing.assert_close(
        vj[t, h, w], torch.tensor(by_hand(t, 8) + by_hand(h, 4) + by_hand(w, 4)).double()
    )


def test_axis_dims_summing_past_dim_are_cut_like_vjepa_uniform_power():
    dim = 16
    per_axis = 2 * math.ceil(dim / 6)  # V-JEPA's uniform_power rule: 6 each, 18 in all
    emb = sincos_pos_embed((2, 2, 2), dim, axis_dims=(per_axis,) * 3, dtype=torch.float64)
    full = by_hand(1, per_axis) + by_hand(0, per_axis) + by_hand(1, per_axis)
    torch.testing.assert_close(emb[1, 0, 1], torch.tensor(full[:dim]).double())


def test_sinusoidal_module_adds_embedding_in_row_major_order_and_is_not_persistent():
    m = SinusoidalPositionEmbedding(8, grid=(2, 3))
    x = torch.randn(4, 6, 8)
    out = m(x)
    h, w = 1, 2  # token index h * W + w
    torch.testing.assert_close(
        out[:, h * 3 + w] - x[:, h * 3 + w], torch.tensor(by_hand(h, 4) + by_hand(w, 4)).expand(4, 8)
    )
    assert "pos_embed" not in m.state_dict()
    assert list(m.parameters()) == []


def test_sinusoidal_module_other_grid_evaluates_sinusoids_there():
    m = SinusoidalPositionEmbedding(12, grid=(2, 2, 2))
    x = torch.zeros(1, 3 * 4 * 2, 12)
    out = m(x, grid=(3, 4, 2))
    torch.testing.assert_close(out[0], sincos_pos_embed_3d(3, 4, 2, 12).reshape(-1, 12))


def test_learned_init_and_add():
    m = LearnedPositionEmbedding(32, grid=(16, 16))
    assert m.pos_embed.shape == (16, 16, 32)
    assert abs(m.pos_embed.std().item() - 0.02) < 0.002
    x = torch.randn(2, 256, 32)
    torch.testing.assert_close(m(x), x + m.pos_embed.reshape(1, 256, 32))


@pytest.mark.parametrize("grid", [(8,), (4, 6), (2, 4, 6)])
def test_learned_halving_interpolation_averages_neighbours(grid: tuple[int, ...]):
    """Linear interpolation (align_corners=False) to half size samples midway between pairs."""
    D = 3
    m = LearnedPositionEmbedding(D, grid=grid)
    half = tuple(n // 2 for n in grid)
    table = m.pos_embed.detach()
    blocks = table.reshape(*[s for n in half for s in (n, 2)], D)  # pairs along each axis
    expected = blocks.mean(dim=tuple(range(1, 2 * len(grid), 2)))  # (*half, D)
    torch.testing.assert_close(m.interpolate(half), expected)
    x = torch.randn(2, math.prod(half), D)
    torch.testing.assert_close(m(x, grid=half), x + expected.reshape(1, -1, D))


def test_learned_interpolation_keeps_a_constant_table_and_is_identity_on_same_grid():
    m = LearnedPositionEmbedding(4, grid=(3, 5))
    assert m.interpolate((3, 5)) is m.pos_embed
    with torch.no_grad():
        m.pos_embed.copy_(torch.tensor([1.0, -2.0, 0.5, 3.0]).expand(3, 5, 4))
    torch.testing.assert_close(m.interpolate((7, 2)), torch.tensor([1.0, -2.0, 0.5, 3.0]).expand(7, 2, 4))


def test_learned_gets_gradient_and_gradcheck_through_interpolation():
    m = LearnedPositionEmbedding(4, grid=(3, 3)).double()
    x = torch.randn(2, 16, 4, dtype=torch.float64, requires_grad=True)
    m(x, grid=(4, 4)).sum().backward()
    assert m.pos_embed.grad is not None and m.pos_embed.grad.abs().sum() > 0
    table = m.pos_embed.detach().clone().requires_grad_(True)
    x0 = torch.randn(1, 20, 4, dtype=torch.float64, requires_grad=True)

    def resized(t: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(m, {"pos_embed": t}, (tokens,), {"grid": (4, 5)})

    assert torch.autograd.gradcheck(resized, (table, x0))


def test_bad_inputs_raise_input_error():
    with pytest.raises(InputError, match="divisible by 4"):
        sincos_pos_embed_2d(2, 2, 6)
    with pytest.raises(InputError, match="divisible by 6"):
        sincos_pos_embed_3d(2, 2, 2, 16)
    with pytest.raises(InputError, match="divisible by 2"):
        sincos_pos_embed_1d(3, 5)
    with pytest.raises(InputError, match="even dim"):
        sincos_from_positions(torch.arange(3), 5)
    with pytest.raises(InputError, match="axis_dims"):
        sincos_pos_embed_3d(2, 2, 2, 16, axis_dims=(8, 4, 3))
    with pytest.raises(InputError, match="grid"):
        SinusoidalPositionEmbedding(8, grid=(2, 0))
    with pytest.raises(InputError, match="grid"):
        LearnedPositionEmbedding(8, grid=(1, 2, 3, 4))
    m = LearnedPositionEmbedding(8, grid=(2, 3))
    with pytest.raises(InputError, match="N=6"):
        m(torch.randn(1, 5, 8))
    with pytest.raises(InputError, match="interpolate"):
        m(torch.randn(1, 6, 8), grid=(6,))
    with pytest.raises(InputError, match="floating"):
        SinusoidalPositionEmbedding(8, grid=(6,))(torch.ones(1, 6, 8, dtype=torch.long))


def test_soft_position_embedding_adds_a_linear_map_of_the_four_ramps():
    """Slot Attention's grid (y, x, 1 - y, 1 - x) in [0, 1], row-major, written out for 2 x 3."""
    emb = SoftPositionEmbedding(5, grid=(2, 3))
    ramps = torch.tensor(
        [[y, x, 1 - y, 1 - x] for y in (0.0, 1.0) for x in (0.0, 0.5, 1.0)]
    )  # (6, 4), the token order of a row-major 2 x 3 grid
    x = torch.randn(2, 6, 5)
    want = x + ramps @ emb.proj.weight.T + emb.proj.bias
    torch.testing.assert_close(emb(x), want)
    emb(x).sum().backward()
    assert emb.proj.weight.grad is not None and emb.proj.weight.grad.abs().sum() > 0
    with pytest.raises(InputError, match="grid"):
        SoftPositionEmbedding(5, grid=(6,))
    with pytest.raises(InputError, match="tokens"):
        emb(torch.randn(2, 5, 5))
