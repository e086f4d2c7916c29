"""NoisyLinear against float64 hand maths: eval uses mu, training mu + sigma * factorised noise."""

import math

import pytest
import torch

from attnlab.errors import InputError
from attnlab.layers.noisy_linear import NoisyLinear


def test_eval_is_the_mean_weights_and_training_adds_factorised_noise():
    torch.manual_seed(0)
    layer = NoisyLinear(5, 3, std_init=0.4)
    x = torch.randn(2, 5)
    layer.eval()
    expected = x.double() @ layer.weight_mu.double().T + layer.bias_mu.double()
    torch.testing.assert_close(layer(x).double(), expected, rtol=0, atol=1e-6)
    layer.train()
    w = layer.weight_mu.double() + layer.weight_sigma.double() * layer.weight_epsilon.double()
    b = layer.bias_mu.double() + layer.bias_sigma.double() * layer.bias_epsilon.double()
    torch.testing.assert_close(layer(x).double(), x.double() @ w.T + b, rtol=0, atol=1e-6)
    assert not torch.allclose(layer(x), layer.eval()(x))


def test_noise_is_factorised_with_signed_square_roots():
    layer = NoisyLinear(4, 3)
    gen = torch.Generator().manual_seed(7)
    layer.reset_noise(gen)
    raw = torch.randn(7, generator=torch.Generator().manual_seed(7))
    f = raw.sign() * raw.abs().sqrt()
    eps_in, eps_out = f[:4], f[4:]
    torch.testing.assert_close(layer.bias_epsilon, eps_out)
    torch.testing.assert_close(layer.weight_epsilon, torch.outer(eps_out, eps_in))


def test_rainbow_init_ranges_and_sigma_values():
    torch.manual_seed(1)
    layer = NoisyLinear(16, 9, std_init=0.5)
    bound = 1 / math.sqrt(16)
    assert layer.weight_mu.abs().max() <= bound and layer.bias_mu.abs().max() <= bound
    assert torch.all(layer.weight_sigma == 0.5 / math.sqrt(16))
    assert torch.all(layer.bias_sigma == 0.5 / math.sqrt(9))
    assert {"weight_epsilon", "bias_epsilon"} <= set(layer.state_dict())


def test_sigma_gets_gradients_in_training_and_bad_input_is_one_line():
    layer = NoisyLinear(3, 2)
    layer(torch.randn(4, 3)).sum().backward()
    assert layer.weight_sigma.grad is not None and layer.weight_sigma.grad.abs().sum() > 0
    with pytest.raises(InputError, match=r"expects \(\.\.\., 3\)"):
        layer(torch.randn(4, 5))
    with pytest.raises(InputError, match="sizes >= 1"):
        NoisyLinear(0, 2)
