"""Highway layer against the paper's equation computed by hand in float64."""

from __future__ import annotations

import math

import pytest
import torch

from attnlab.errors import InputError
from attnlab.explain.capture import capture
from attnlab.layers.highway import Highway


def test_matches_the_equation_unit_by_unit() -> None:
    torch.manual_seed(0)
    layer = Highway(3, gate_bias=-1.0).double()
    x = torch.randn(2, 3, dtype=torch.float64)
    expected = torch.empty_like(x)
    gates = torch.empty_like(x)
    with torch.no_grad():
        for b in range(2):
            for i in range(3):
                h = max(0.0, float(layer.transform.weight[i] @ x[b] + layer.transform.bias[i]))
                t = 1 / (1 + math.exp(-float(layer.gate.weight[i] @ x[b] + layer.gate.bias[i])))
                expected[b, i] = h * t + float(x[b, i]) * (1 - t)
                gates[b, i] = t
    with capture(layer) as rec:
        out = layer(x)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(rec[""], gates)


def test_closed_gate_carries_the_input_and_open_gate_transforms() -> None:
    layer = Highway(4).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    with torch.no_grad():
        layer.gate.weight.zero_()
        layer.gate.bias.fill_(-40.0)  # T = sigmoid(-40) ~ 4e-18: carry
        torch.testing.assert_close(layer(x), x)
        layer.gate.bias.fill_(40.0)  # T ~ 1: transform
        torch.testing.assert_close(layer(x), torch.relu(layer.transform(x)))
    assert Highway(4).gate.bias.eq(-2.0).all()  # the default starts mostly carrying


def test_bad_input() -> None:
    with pytest.raises(InputError, match=r"\(\.\.\., 4\)"):
        Highway(4)(torch.randn(2, 3))
