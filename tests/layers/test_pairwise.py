"""SAN pairwise/patchwise self-attention against a float64 per-position loop over the footprint."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.explain.capture import capture
from attnlab.layers.pairwise import (
    PairwiseSelfAttention,
    PatchwiseSelfAttention,
    attention_received,
    footprint,
)

SIZES = {1: (7,), 2: (5, 5)}


def _randomize_norms(module: nn.Module) -> nn.Module:
    """Random BN affine and running statistics, so eval-mode BN is a non-trivial affine map."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                assert m.running_mean is not None and m.running_var is not None
                m.weight.normal_(1.0, 0.3)
                m.bias.normal_(0.0, 0.3)
                m.running_mean.normal_(0.0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    return module


def _reflect(p: int, n: int) -> int:
    return -p if p < 0 else (2 * (n - 1) - p if p >= n else p)


def _footprint_sources(pos: tuple[int, ...], sizes: tuple[int, ...], k: int, d: int) -> list[tuple[int, ...]]:
    """Pixels read by the footprint of ``pos``, offsets in row-major order, reflected at borders."""
    offsets = itertools.product(range(-(k // 2), k // 2 + 1), repeat=len(sizes))
    return [tuple(_reflect(p + d * o, n) for p, o, n in zip(pos, off, sizes, strict=True)) for off in offsets]


def _lin(conv: nn.Module, v: torch.Tensor) -> torch.Tensor:
    out = conv.weight.reshape(conv.weight.shape[0], -1) @ v
    return out if conv.bias is None else out + conv.bias


def _bn(norm: nn.Module, v: torch.Tensor) -> torch.Tensor:
    return (v - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps) * norm.weight + norm.bias


def _gamma(seq: nn.Sequential, v: torch.Tensor) -> torch.Tensor:
    """BN-ReLU-1x1 conv-BN-ReLU-1x1 conv on one vector (eval mode)."""
    bn1, _, conv1, bn2, _, conv2 = seq
    return _lin(conv2, torch.relu(_bn(bn2, _lin(conv1, torch.relu(_bn(bn1, v))))))


def _coordinate(pos: tuple[int, ...], sizes: tuple[int, ...]) -> torch.Tensor:
    """Normalised coordinate in [-1, 1] per axis, width (last axis) first as in SAN."""
    c = [-1.0 + 2.0 * p / (n - 1) for p, n in zip(pos, sizes, strict=True)]
    return torch.tensor(c[::-1], dtype=torch.float64)


Pos = tuple[int, ...]


def _at(xb: torch.Tensor, pos: Pos) -> torch.Tensor:
    """Feature vector (C,) of one sample (C, *spatial) at ``pos``."""
    return xb[(slice(None), *pos)]


def _alpha_pairwise(
    layer: PairwiseSelfAttention, xb: torch.Tensor, pos: Pos, sources: list[Pos]
) -> torch.Tensor:
    """(A, K) logits: gamma([delta(phi(x_i), psi(x_j)), P(c_i - c_j)]) per footprint source j."""
    sizes = tuple(xb.shape[1:])
    phi_i = _lin(layer.phi, _at(xb, pos))
    cols = []
    for src in sources:
        psi_j = _lin(layer.psi, _at(xb, src))
        delta = {
            "subtraction": phi_i - psi_j,
            "summation": phi_i + psi_j,
            "concatenation": torch.cat([phi_i, psi_j]),
        }[layer.relation]
        if layer.pos_proj is None:  # position=False: gamma sees the relation alone
            cols.append(_gamma(layer.gamma, delta))
            continue
        position = _lin(layer.pos_proj, _coordinate(pos, sizes) - _coordinate(src, sizes))
        cols.append(_gamma(layer.gamma, torch.cat([delta, position])))
    return torch.stack(cols, dim=1)


def _alpha_patchwise(
    layer: PatchwiseSelfAttention, xb: torch.Tensor, pos: Pos, sources: list[Pos]
) -> torch.Tensor:
    """(A, K) logits: gamma([phi(x_i), psi(x_j1), ..., psi(x_jK)]), channel r * K + k holding psi_r(x_jk)."""
    psi = torch.stack([_lin(layer.psi, _at(xb, src)) for src in sources], dim=1)  # (R, K)
    logits = _gamma(layer.gamma, torch.cat([_lin(layer.phi, _at(xb, pos)), psi.reshape(-1)]))
    return logits.view(layer.attn_dim, len(sources))  # index a * K + k


def _reference(layer: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Output and (B, A, K, N) weights, one position at a time, from the paper's equations."""
    B, _, *rest = x.shape
    sizes = tuple(rest)
    positions = list(itertools.product(*(range(n) for n in sizes)))
    y = torch.empty(B, layer.out_dim, *sizes, dtype=x.dtype)
    weights = torch.empty(B, layer.attn_dim, layer.footprint_size, len(positions), dtype=x.dtype)
    for b, (n, pos) in itertools.product(range(B), enumerate(positions)):
        sources = _footprint_sources(pos, sizes, layer.kernel_size, layer.dilation)
        if isinstance(layer, PairwiseSelfAttention):
            logits = _alpha_pairwise(layer, x[b], pos, sources)
        else:
            logits = _alpha_patchwise(layer, x[b], pos, sources)
        alpha = logits.softmax(dim=1) if getattr(layer, "softmax", True) else logits  # (A, K)
        weights[b, :, :, n] = alpha
        values = [_lin(layer.beta, _at(x[b], s)) for s in sources]  # beta(x_j), (C_out,) each
        for c in range(layer.out_dim):  # channel c shares attention channel c mod A
            y[(b, c, *pos)] = sum(alpha[c % layer.attn_dim, k] * values[k][c] for k in range(len(sources)))
    return y, weights


def _pairwise(ndim: int = 2, **overrides: object) -> PairwiseSelfAttention:
    args: dict[str, object] = dict(out_dim=6, rel_dim=2, share_planes=2, ndim=ndim)
    args.update(overrides)
    return PairwiseSelfAttention(4, **args)  # type: ignore[arg-type]


def _patchwise(ndim: int = 2, **overrides: object) -> PatchwiseSelfAttention:
    args: dict[str, object] = dict(out_dim=6, rel_dim=2, share_planes=2, ndim=ndim)
    args.update(overrides)
    return PatchwiseSelfAttention(4, **args)  # type: ignore[arg-type]


def test_footprint_reflects_at_borders_2d() -> None:
    x = torch.arange(25.0).view(1, 1, 5, 5)  # value at (r, c) = 5 r + c
    cols = footprint(x, 3, 1)[0, 0]  # (K, N)
    # Position (0, 0): rows -1, 0, 1 -> 1, 0, 1; columns likewise.
    assert cols[:, 0].tolist() == [6, 5, 6, 1, 0, 1, 6, 5, 6]
    # Position (4, 4): rows 3, 4, 5 -> 3, 4, 3; columns likewise.
    assert cols[:, 24].tolist() == [18, 19, 18, 23, 24, 23, 18, 19, 18]
    # Dilation 2 at (0, 0): rows -2, 0, 2 -> 2, 0, 2.
    assert footprint(x, 3, 2)[0, 0, :, 0].tolist() == [12, 10, 12, 2, 0, 2, 12, 10, 12]
    # An interior position reads plain neighbours: (2, 2) with dilation 2 -> rows/cols 0, 2, 4.
    assert footprint(x, 3, 2)[0, 0, :, 12].tolist() == [0, 2, 4, 10, 12, 14, 20, 22, 24]


def test_footprint_reflects_at_borders_1d() -> None:
    x = torch.arange(5.0).view(1, 1, 5)
    assert footprint(x, 3, 2)[0, 0, :, 0].tolist() == [2, 0, 2]  # -2 -> 2
    assert footprint(x, 3, 2)[0, 0, :, 4].tolist() == [2, 4, 2]  # 6 -> 2
    assert footprint(x, 5, 1)[0, 0, :, 1].tolist() == [1, 0, 1, 2, 3]  # -1 -> 1


@pytest.mark.parametrize("dilation", [1, 2])
def test_uniform_weights_average_the_reflected_footprint(dilation: int) -> None:
    layer = _pairwise(out_dim=4, share_planes=4, dilation=dilation)
    with torch.no_grad():
        layer.gamma[-1].weight.zero_()  # constant logits -> softmax weights 1 / 9
        layer.gamma[-1].bias.zero_()
        layer.beta.weight.copy_(torch.eye(4).view_as(layer.beta.weight))  # beta = identity
        layer.beta.bias.zero_()
    x = torch.arange(25.0).view(1, 1, 5, 5).repeat(1, 4, 1, 1)
    out = layer(x)
    # Corner (0, 0), dilation 1: rows {1, 0, 1} x columns {1, 0, 1}; sum of 5 r + c is
    # 3 * 5 * 2 + 3 * 2 = 36, mean 4 (zero padding would give 12 / 9). Dilation 2: rows
    # and columns {2, 0, 2}, sum 3 * 5 * 4 + 3 * 4 = 72, mean 8.
    expected = 4.0 if dilation == 1 else 8.0
    torch.testing.assert_close(out[0, :, 0, 0], torch.full((4,), expected))


@pytest.mark.parametrize("ndim", [1, 2])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("relation", ["subtraction", "summation", "concatenation"])
def test_pairwise_matches_per_position_loop(ndim: int, dilation: int, relation: str) -> None:
    torch.manual_seed(0)
    layer = _randomize_norms(_pairwise(ndim, dilation=dilation, relation=relation)).double().eval()
    x = torch.randn(2, 4, *SIZES[ndim], dtype=torch.float64)
    expected, expected_w = _reference(layer, x)
    with capture(layer) as rec:
        out = layer(x)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(rec[""], expected_w)


@pytest.mark.parametrize("dilation", [1, 3])
def test_pairwise_without_position_matches_per_position_loop_1d(dilation: int) -> None:
    torch.manual_seed(3)
    layer = _randomize_norms(_pairwise(1, dilation=dilation, position=False)).double().eval()
    assert layer.pos_proj is None and layer.gamma[0].num_features == layer.rel_dim
    x = torch.randn(2, 4, 9, dtype=torch.float64)
    expected, expected_w = _reference(layer, x)
    with capture(layer) as rec:
        out = layer(x)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(rec[""], expected_w)


def test_attention_received_by_hand_1d() -> None:
    # N = 5, kernel 3, dilation 2: query 0 reads [2, 0, 2], query 2 reads [0, 2, 4], query 4 reads [2, 4, 2].
    w = torch.zeros(1, 1, 3, 5, dtype=torch.float64)
    w[0, 0, :, 0] = torch.tensor([0.5, 0.25, 0.25])  # position 2 gets 0.5 + 0.25, position 0 gets 0.25
    w[0, 0, :, 2] = torch.tensor([0.1, 0.2, 0.7])  # positions 0, 2, 4
    w[0, 0, :, 4] = torch.tensor([0.3, 0.3, 0.4])  # position 2 gets 0.7, position 4 0.3
    got = attention_received(w, (5,), 3, 2)[0, 0]
    torch.testing.assert_close(got, torch.tensor([0.35, 0.0, 1.65, 0.0, 1.0], dtype=torch.float64))


def test_attention_received_matches_loop_2d() -> None:
    torch.manual_seed(4)
    sizes, k, d = (4, 5), 3, 1
    w = torch.rand(2, 3, k * k, 20, dtype=torch.float64)
    expected = torch.zeros(2, 3, 20, dtype=torch.float64)
    positions = list(itertools.product(range(4), range(5)))
    for n, pos in enumerate(positions):
        for kk, src in enumerate(_footprint_sources(pos, sizes, k, d)):
            expected[:, :, src[0] * 5 + src[1]] += w[:, :, kk, n]
    torch.testing.assert_close(attention_received(w, sizes, k, d), expected)


@pytest.mark.parametrize("ndim", [1, 2])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("softmax", [True, False])
def test_patchwise_matches_per_position_loop(ndim: int, dilation: int, softmax: bool) -> None:
    torch.manual_seed(1)
    layer = _randomize_norms(_patchwise(ndim, dilation=dilation, softmax=softmax)).double().eval()
    x = torch.randn(2, 4, *SIZES[ndim], dtype=torch.float64)
    expected, expected_w = _reference(layer, x)
    with capture(layer) as rec:
        out = layer(x)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(rec[""], expected_w)


@pytest.mark.parametrize("make", [_pairwise, _patchwise])
def test_channels_of_a_share_group_use_the_same_weights(make) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(2)
    layer = make(out_dim=6, share_planes=2)  # A = 3 attention channels; c and c + 3 share
    with torch.no_grad():  # every beta channel computes the same value
        layer.beta.weight.copy_(layer.beta.weight[:1].expand_as(layer.beta.weight))
        layer.beta.bias.fill_(0.1)
    out = layer(torch.randn(2, 4, 5, 5))
    for c in range(3):
        assert torch.equal(out[:, c], out[:, c + 3])
    assert not torch.allclose(out[:, 0], out[:, 1])  # different attention channels differ


@pytest.mark.parametrize("make", [_pairwise, _patchwise])
@pytest.mark.parametrize("ndim", [1, 2])
def test_gradcheck_float64(make, ndim: int) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(3)
    layer = _randomize_norms(make(ndim, dilation=2)).double().eval()
    x = torch.randn(1, 4, *((5,) if ndim == 1 else (3, 3)), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


@pytest.mark.parametrize("make", [_pairwise, _patchwise])
@pytest.mark.parametrize("ndim", [1, 2])
def test_every_parameter_gets_a_gradient(make, ndim: int) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(4)
    layer = make(ndim)
    x = torch.randn(2, 4, *SIZES[ndim])
    layer(x).sum().backward()  # train mode
    assert all(p.grad is not None for p in layer.parameters())
    # In train mode BN removes per-channel constants such as phi's bias (as in the official
    # code), so check that every parameter matters with eval-mode (affine) BN.
    layer = _randomize_norms(layer).eval()
    layer.zero_grad()
    out = layer(x)
    (out * torch.randn_like(out)).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("make", [_pairwise, _patchwise])
@pytest.mark.parametrize("ndim", [1, 2])
def test_capture_records_documented_shape(make, ndim: int) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(5)
    model = nn.Sequential(make(ndim, kernel_size=5)).eval()
    x = torch.randn(2, 4, *SIZES[ndim])
    plain = model(x)
    with capture(model) as rec:
        assert torch.equal(model(x), plain)
    w = rec["0"]
    K, N = 5**ndim, (7 if ndim == 1 else 25)
    assert w.shape == (2, 3, K, N)  # (B, A = 6 / 2, K, N)
    torch.testing.assert_close(w.sum(dim=2), torch.ones(2, 3, N, dtype=w.dtype))


@pytest.mark.parametrize("make", [_pairwise, _patchwise])
@pytest.mark.parametrize(
    "shape",
    [
        (1, 5, 5, 5),  # wrong channels
        (1, 4, 5),  # 1D input to a 2D layer
        (1, 4, 1, 5),  # too small for reflection padding 1
    ],
)
def test_bad_inputs_raise(make, shape: tuple[int, ...]) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError):
        make()(torch.randn(*shape))
    with pytest.raises(InputError):
        make()(torch.ones(1, 4, 5, 5, dtype=torch.long))


@pytest.mark.parametrize(
    "overrides",
    [{"kernel_size": 4}, {"dilation": 0}, {"ndim": 3}, {"out_dim": 5}, {"share_planes": 0}],
)
def test_bad_arguments_raise(overrides: dict[str, object]) -> None:
    with pytest.raises(InputError):
        _pairwise(**overrides)
    with pytest.raises(InputError):
        _patchwise(**overrides)
    with pytest.raises(InputError):
        _pairwise(relation="product")
