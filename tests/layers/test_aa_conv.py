"""AugmentedConv2d against nn.Conv2d and a float64 double loop over positions (paper, Eq. 3)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.explain.capture import capture
from attnlab.layers.aa_conv import AugmentedConv2d, rel_to_abs


def _layer(**overrides: object) -> AugmentedConv2d:
    args: dict[str, object] = dict(out_dim=7, dk=4, dv=4, num_heads=2, input_size=(4, 3))
    args.update(overrides)
    return AugmentedConv2d(3, **args)  # type: ignore[arg-type]


def _avg_pool_loops(x: torch.Tensor, s: int) -> torch.Tensor:
    """Mean over each s x s window that starts inside the image (windows clipped at the border)."""
    B, C, H, W = x.shape
    out = torch.empty(B, C, -(-H // s), -(-W // s), dtype=x.dtype)
    for a, b in itertools.product(range(out.shape[2]), range(out.shape[3])):
        out[:, :, a, b] = x[:, :, a * s : a * s + s, b * s : b * s + s].mean(dim=(2, 3))
    return out


def _reference(layer: AugmentedConv2d, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention channels and per-head weights, one (query, key) pair at a time."""
    x = _avg_pool_loops(x, layer.stride) if layer.stride > 1 else x
    B, _, H, W = x.shape
    Nh, dk, dv = layer.num_heads, layer.dk, layer.dv
    dkh, dvh = dk // Nh, dv // Nh
    w_qkv = layer.qkv.weight.reshape(2 * dk + dv, -1)
    positions = list(itertools.product(range(H), range(W)))
    weights = torch.empty(B, Nh, H * W, H * W, dtype=x.dtype)
    out = torch.empty(B, dv, H, W, dtype=x.dtype)
    for b in range(B):
        qkv = [w_qkv @ x[b, :, y, xx] + layer.qkv.bias for y, xx in positions]
        for h in range(Nh):
            q = [t[h * dkh : (h + 1) * dkh] for t in qkv]
            k = [t[dk + h * dkh : dk + (h + 1) * dkh] for t in qkv]
            v = [t[2 * dk + h * dvh : 2 * dk + (h + 1) * dvh] for t in qkv]
            for i, (iy, ix) in enumerate(positions):
                logits = torch.empty(H * W, dtype=x.dtype)
                for j, (jy, jx) in enumerate(positions):
                    key = k[j].clone()
                    if layer.relative:
                        assert layer.rel_w is not None and layer.rel_h is not None
                        key = key + layer.rel_w[jx - ix + W - 1] + layer.rel_h[jy - iy + H - 1]
                    logits[j] = q[i] @ key / math.sqrt(dkh)
                weights[b, h, i] = torch.softmax(logits, dim=0)
                out[b, h * dvh : (h + 1) * dvh, iy, ix] = sum(
                    weights[b, h, i, j] * v[j] for j in range(H * W)
                )
    proj = layer.proj.weight.reshape(dv, dv)
    out = torch.einsum("oc,bchw->bohw", proj, out) + layer.proj.bias[:, None, None]
    return out, weights


def test_rel_to_abs_equals_gather() -> None:
    torch.manual_seed(0)
    L = 5
    x = torch.randn(2, 3, L, 2 * L - 1)
    out = rel_to_abs(x)
    assert out.shape == (2, 3, L, L)
    for i, j in itertools.product(range(L), range(L)):
        assert torch.equal(out[..., i, j], x[..., i, j - i + L - 1])


@pytest.mark.parametrize("stride", [1, 2])
def test_conv_part_equals_conv2d_with_copied_weights(stride: int) -> None:
    torch.manual_seed(1)
    layer = _layer(stride=stride, kernel_size=3, input_size=(5, 6))
    conv = nn.Conv2d(3, 3, 3, stride=stride, padding=1)
    assert layer.conv is not None
    conv.load_state_dict(layer.conv.state_dict())
    x = torch.randn(2, 3, 5, 6)
    out = layer(x)
    assert out.shape == (2, 7, -(-5 // stride), -(-6 // stride))
    torch.testing.assert_close(out[:, :3], conv(x))


@pytest.mark.parametrize("relative", [True, False])
@pytest.mark.parametrize(("stride", "size"), [(1, (4, 3)), (2, (5, 3))])
def test_attention_part_matches_double_loop(relative: bool, stride: int, size: tuple[int, int]) -> None:
    torch.manual_seed(2)
    layer = _layer(relative=relative, stride=stride, input_size=size).double()
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    expected, expected_w = _reference(layer, x)
    torch.testing.assert_close(layer(x)[:, 3:], expected)  # fused path
    with capture(layer, differentiable=True) as rec:
        eager = layer(x)
    torch.testing.assert_close(eager[:, 3:], expected)
    torch.testing.assert_close(rec[""], expected_w)


def test_fully_attentional_when_dv_equals_out_dim() -> None:
    torch.manual_seed(3)
    layer = _layer(out_dim=4, dv=4).double()
    assert layer.conv is None
    x = torch.randn(1, 3, 4, 3, dtype=torch.float64)
    torch.testing.assert_close(layer(x), _reference(layer, x)[0])


def test_gradcheck_float64() -> None:
    torch.manual_seed(4)
    layer = _layer(input_size=(3, 3)).double()
    x = torch.randn(1, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


@pytest.mark.parametrize("stride", [1, 2])
def test_every_parameter_gets_a_gradient(stride: int) -> None:
    torch.manual_seed(5)
    layer = _layer(stride=stride, input_size=(4, 4))
    layer(torch.randn(2, 3, 4, 4)).sum().backward()  # fused path: gradients through attn_mask
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_capture_records_per_head_weights() -> None:
    torch.manual_seed(6)
    model = nn.Sequential(_layer(stride=2, input_size=(5, 4)))
    x = torch.randn(2, 3, 5, 4)
    plain = model(x)
    with capture(model) as rec:
        captured = model(x)
    w = rec["0"]
    assert w.shape == (2, 2, 6, 6)  # (B, Nh, hw, hw) with h, w = ceil(5 / 2), ceil(4 / 2)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 2, 6))
    assert torch.equal(captured, plain)
    with capture(model, differentiable=True) as rec:
        out = model(x)
    (grad,) = torch.autograd.grad(out.sum(), rec["0"])
    assert grad.shape == w.shape
    torch.testing.assert_close(out, plain)


def test_relative_embeddings_have_paper_shapes() -> None:
    layer = _layer(dk=6, num_heads=3, dv=3, input_size=(7, 4), stride=2)
    assert layer.rel_h is not None and layer.rel_w is not None
    # 2h - 1 and 2w - 1 offsets of size dk / Nh on the 4 x 2 attention map.
    assert layer.rel_h.shape == (7, 2)
    assert layer.rel_w.shape == (3, 2)
    assert _layer(relative=False).rel_h is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"dk": 3},  # not a multiple of num_heads
        {"dv": 5},
        {"dv": 8},  # more than out_dim
        {"kernel_size": 2},
        {"stride": 0},
        {"attn_drop": 1.0},
        {"input_size": None},  # relative without a size
    ],
)
def test_bad_arguments_raise(overrides: dict[str, object]) -> None:
    with pytest.raises(InputError):
        _layer(**overrides)


@pytest.mark.parametrize("shape", [(1, 3, 5, 3), (1, 4, 4, 3), (3, 4, 3)])
def test_bad_inputs_raise(shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError):
        _layer()(torch.randn(*shape))
    with pytest.raises(InputError):
        _layer()(torch.ones(1, 3, 4, 3, dtype=torch.long))


def test_any_input_size_without_relative() -> None:
    layer = _layer(relative=False, input_size=None)
    assert layer(torch.randn(1, 3, 6, 2)).shape == (1, 7, 6, 2)
