"""SqueezeExcite against a float64 computation of Eq. (2)-(4) of Hu et al."""

import pytest
import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.explain import capture
from attnlab.layers.squeeze_excite import SqueezeExcite


def se64(
    m: SqueezeExcite,
    x: torch.Tensor,
    act=lambda h: h.clamp_min(0.0),
    gate=lambda z: 1.0 / (1.0 + torch.exp(-z)),
):
    """z = mean over positions, s = gate(W2 act(W1 z + b1) + b2), y_c = s_c x_c; returns (y, s)."""
    p = {k: v.double() for k, v in m.state_dict().items()}
    x = x.double()
    B, C = x.shape[:2]
    z = x.reshape(B, C, -1).sum(-1) / x[0, 0].numel()
    hidden = act(z @ p["fc1.weight"].T + p["fc1.bias"])
    s = gate(hidden @ p["fc2.weight"].T + p["fc2.bias"])
    y = torch.stack([torch.stack([s[b, c] * x[b, c] for c in range(C)]) for b in range(B)])
    return y, s


@pytest.mark.parametrize("shape", [(2, 16, 7), (2, 16, 5, 6), (2, 16, 3, 4, 5)])
def test_matches_float64_and_records_the_gate(shape):
    m = SqueezeExcite(16, reduction=4, min_channels=2)
    x = torch.randn(shape)
    with capture(m) as rec:
        out = m(x)
    expected, expected_gate = se64(m, x)
    assert out.shape == x.shape
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)
    assert rec[""].shape == (2, 16)
    torch.testing.assert_close(rec[""].double(), expected_gate, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    "channels, reduction, min_channels, hidden",
    [(64, 16, 8, 8), (256, 16, 8, 16), (32, 4, 1, 8), (12, 16, 1, 1)],
)
def test_bottleneck_width_is_c_over_r_with_a_floor(channels, reduction, min_channels, hidden):
    m = SqueezeExcite(channels, reduction=reduction, min_channels=min_channels)
    assert m.fc1.weight.shape == (hidden, channels)
    assert m.fc2.weight.shape == (channels, hidden)


def test_zero_weights_gate_everything_by_one_half():
    m = SqueezeExcite(8, reduction=2)
    for p in m.parameters():
        nn.init.zeros_(p)
    x = torch.randn(3, 8, 4, 4)
    with capture(m) as rec:
        out = m(x)
    torch.testing.assert_close(rec[""], torch.full((3, 8), 0.5))
    torch.testing.assert_close(out, 0.5 * x)


def test_saturated_gate_passes_input_through():
    m = SqueezeExcite(8, reduction=2)
    nn.init.zeros_(m.fc2.weight)
    nn.init.constant_(m.fc2.bias, 40.0)  # sigmoid(40) = 1 in float32
    x = torch.randn(2, 8, 5)
    torch.testing.assert_close(m(x), x)


def test_custom_act_and_gate_layers():
    m = SqueezeExcite(8, reduction=2, act_layer=nn.ReLU6, gate_layer=nn.Hardsigmoid)
    x = torch.randn(2, 8, 3, 3)
    relu6 = lambda h: h.clamp(0.0, 6.0)
    expected, _ = se64(m, x, act=relu6, gate=lambda z: relu6(z + 3.0) / 6.0)  # hard sigmoid
    torch.testing.assert_close(m(x).double(), expected, atol=1e-5, rtol=1e-5)


def test_gradcheck_float64():
    m = SqueezeExcite(4, reduction=2, min_channels=1).double()
    x = torch.randn(2, 4, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(m, (x,))


def test_every_parameter_gets_gradient():
    m = SqueezeExcite(8, reduction=2)
    out = m(torch.randn(2, 8, 4, 4))
    (out * torch.randn_like(out)).sum().backward()
    for name, param in m.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "x",
    [torch.randn(2, 8), torch.randn(2, 6, 4, 4), torch.randint(0, 5, (2, 8, 4, 4))],
    ids=["no-positions", "channels", "integer"],
)
def test_bad_inputs_raise(x):
    with pytest.raises(InputError):
        SqueezeExcite(8)(x)


def test_bad_constructor_arguments_raise():
    with pytest.raises(InputError):
        SqueezeExcite(8, reduction=0)
