"""DINO's projection head: MLP -> bottleneck -> L2 normalisation -> weight-normalised linear layer.

Paper: Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021,
arXiv:2104.14294 (Sec. 3.1 and Appendix: the head is a 3-layer MLP of hidden width 2048, an
l2-normalised bottleneck of 256 and a weight-normalised layer of K = 65536 outputs).
Reference implementation: facebookresearch/dino ``vision_transformer.py`` (``DINOHead``).

The last layer is ``w = g * v / ||v||`` row by row, without bias. Its parameters keep the names of
the old ``torch.nn.utils.weight_norm`` (``last_layer.weight_g`` (K, 1), ``last_layer.weight_v``
(K, bottleneck)), as the released checkpoints store them, so those load without renaming; the
parametrisation API would have called them ``parametrizations.weight.original0/1``. ``g`` starts at 1
and, with ``norm_last_layer`` (the official default), stays 1: the output is then a cosine
similarity to K prototypes, which the paper found stabilises training.

Deviations: none known. The official ``freeze_last_layer`` epochs (gradients of the last layer
dropped early in training) are a training-loop detail
(:func:`attnlab.objectives.dino.cancel_last_layer_gradients`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import ConfigError, InputError


@dataclass
class DINOHeadConfig:
    in_dim: int = 384  # the backbone's width (ViT-S)
    out_dim: int = 65536  # K, the number of prototypes
    nlayers: int = 3  # linear layers before the bottleneck (1: a single linear map)
    hidden_dim: int = 2048
    bottleneck_dim: int = 256
    use_bn: bool = False  # BatchNorm1d after each hidden linear layer (the official ResNet recipe)
    norm_last_layer: bool = True  # keep g = 1: the last layer's rows stay unit vectors

    def check(self) -> None:
        dims = {
            "in_dim": self.in_dim,
            "out_dim": self.out_dim,
            "hidden_dim": self.hidden_dim,
            "bottleneck_dim": self.bottleneck_dim,
        }
        bad = {name: value for name, value in dims.items() if value < 1}
        if bad:
            raise ConfigError(f"DINO head dimensions must be >= 1, got {bad}")
        if self.nlayers < 1:
            raise ConfigError(f"DINO head nlayers must be >= 1, got {self.nlayers}")


class WeightNormLinear(nn.Module):
    """``x @ (g * v / ||v||_row).T`` without bias; parameters named as ``nn.utils.weight_norm`` names them."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(out_dim, 1))  # (K, 1)
        self.weight_v = nn.Parameter(torch.empty(out_dim, in_dim))  # (K, bottleneck)
        # what nn.Linear would have drawn for the weight that weight_norm then wraps
        nn.init.kaiming_uniform_(self.weight_v, a=math.sqrt(5))

    def weight(self) -> torch.Tensor:
        return self.weight_v * (self.weight_g / torch.linalg.vector_norm(self.weight_v, dim=1, keepdim=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight())


def _mlp(c: DINOHeadConfig) -> nn.Module:
    # nlayers == 1 is a bare Linear (state-dict keys mlp.weight / mlp.bias), as the official head
    if c.nlayers == 1:
        return nn.Linear(c.in_dim, c.bottleneck_dim)
    layers: list[nn.Module] = []
    width = c.in_dim
    for _ in range(c.nlayers - 1):
        layers.append(nn.Linear(width, c.hidden_dim))
        if c.use_bn:
            layers.append(nn.BatchNorm1d(c.hidden_dim))
        layers.append(nn.GELU())
        width = c.hidden_dim
    layers.append(nn.Linear(width, c.bottleneck_dim))
    return nn.Sequential(*layers)


class DINOHead(nn.Module):
    """(N, in_dim) backbone features -> (N, out_dim) logits (student's or teacher's, before temperatures)."""

    def __init__(self, config: DINOHeadConfig) -> None:
        super().__init__()
        config.check()
        self.config = config
        self.mlp = _mlp(config)
        for module in self.mlp.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        self.last_layer = WeightNormLinear(config.bottleneck_dim, config.out_dim)
        self.last_layer.weight_g.requires_grad_(not config.norm_last_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.config.in_dim:
            raise InputError(f"DINO head expects (N, {self.config.in_dim}) features, got {tuple(x.shape)}")
        z = F.normalize(self.mlp(x), dim=-1, p=2)  # (N, bottleneck) on the unit sphere
        return self.last_layer(z)
