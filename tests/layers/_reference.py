"""Float64 reference pieces shared by the layer tests."""

import torch
from torch import nn


def randomize_norms(m: nn.Module, *, mean_std: float = 0.2) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, so eval mode is not an identity."""
    with torch.no_grad():
        for bn in m.modules():
            if isinstance(bn, nn.BatchNorm2d | nn.BatchNorm3d):
                bn.running_mean.normal_(0.0, mean_std)
                bn.running_var.uniform_(0.5, 1.5)
                bn.weight.normal_(1.0, 0.2)
                bn.bias.normal_(0.0, 0.2)
    return m


def bn64(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """Eval-mode batch norm written out: (x - mu) / sqrt(var + eps) * gamma + beta."""

    def c(t: torch.Tensor) -> torch.Tensor:
        return t.detach().double()[None, :, None, None]

    return (x - c(bn.running_mean)) / torch.sqrt(c(bn.running_var) + bn.eps) * c(bn.weight) + c(bn.bias)
