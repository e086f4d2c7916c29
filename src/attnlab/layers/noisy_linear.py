"""Noisy linear layer with factorised Gaussian noise (Fortunato et al., "Noisy Networks for
Exploration", ICLR 2018, arXiv:1706.10295), as Rainbow uses it (Hessel et al. 2018,
arXiv:1710.02298; reference: Kaixhin/Rainbow ``model.py``).

``y = (mu_W + sigma_W * eps_W) x + mu_b + sigma_b * eps_b`` in training, ``mu_W x + mu_b`` in
eval. Factorised noise: ``eps_W = f(eps_out) f(eps_in)^T``, ``eps_b = f(eps_out)``,
``f(x) = sign(x) sqrt(|x|)``, with ``eps_in``, ``eps_out`` standard normal drawn by
:meth:`NoisyLinear.reset_noise` (torch's global RNG, or ``generator``). The noise tensors are
buffers, so they are in the state dict (as in Rainbow and the official AQT).

Init as in Rainbow: ``mu ~ U(-1/sqrt(in), 1/sqrt(in))``, ``sigma_W = std_init / sqrt(in)``,
``sigma_b = std_init / sqrt(out)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import InputError


def scaled_noise(size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``f(x) = sign(x) sqrt(|x|)`` of ``size`` standard normal draws."""
    x = torch.randn(size, generator=generator)
    return x.sign() * x.abs().sqrt()


class NoisyLinear(nn.Module):
    """(..., in_features) -> (..., out_features), noisy in training, the mean weights in eval."""

    weight_epsilon: torch.Tensor
    bias_epsilon: torch.Tensor

    def __init__(self, in_features: int, out_features: int, *, std_init: float = 0.5) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1 or std_init < 0:
            raise InputError(
                f"NoisyLinear needs sizes >= 1, std_init >= 0; got {in_features}, {out_features}, {std_init}"
            )
        self.in_features, self.out_features, self.std_init = in_features, out_features, std_init
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_sigma = nn.Parameter(torch.empty(out_features, in_features))
        self.register_buffer("weight_epsilon", torch.zeros(out_features, in_features))
        self.bias_mu = nn.Parameter(torch.empty(out_features))
        self.bias_sigma = nn.Parameter(torch.empty(out_features))
        self.register_buffer("bias_epsilon", torch.zeros(out_features))
        self.reset_parameters()
        self.reset_noise()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_features)
        with torch.no_grad():
            self.weight_mu.uniform_(-bound, bound)
            self.weight_sigma.fill_(self.std_init / math.sqrt(self.in_features))
            self.bias_mu.uniform_(-bound, bound)
            self.bias_sigma.fill_(self.std_init / math.sqrt(self.out_features))

    def reset_noise(self, generator: torch.Generator | None = None) -> None:
        """Draw new factorised noise (used by every training-mode forward until the next call)."""
        eps_in = scaled_noise(self.in_features, generator)
        eps_out = scaled_noise(self.out_features, generator)
        self.weight_epsilon.copy_(torch.outer(eps_out, eps_in))  # (out, in)
        self.bias_epsilon.copy_(eps_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise InputError(f"NoisyLinear expects (..., {self.in_features}), got {tuple(x.shape)}")
        if not self.training:
            return F.linear(x, self.weight_mu, self.bias_mu)
        weight = self.weight_mu + self.weight_sigma * self.weight_epsilon
        bias = self.bias_mu + self.bias_sigma * self.bias_epsilon
        return F.linear(x, weight, bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, std_init={self.std_init}"
