"""Highway layer: a learned gate chooses, per unit, between a transformation and the input.

Srivastava, Greff & Schmidhuber, "Training Very Deep Networks", NeurIPS 2015 (arXiv:1507.06228;
"Highway Networks", arXiv:1505.00387). The survey seed (002) lists the transform gate among the
precursors of attention: a sigmoid weight, computed from the input itself, on what passes.

    y = H(x) ⊙ T(x) + x ⊙ (1 - T(x)),   H(x) = act(W_H x + b_H),   T(x) = sigmoid(W_T x + b_T)

b_T starts negative (``gate_bias``, the paper suggests -1 to -3), so an untrained layer mostly
carries its input. The gate T is recorded as the layer's attention, shaped like x.
"""

from __future__ import annotations

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.layers._recording import RecordsAttention


class Highway(RecordsAttention):
    """Highway layer on (..., dim) -> (..., dim); records the transform gate T(x) (..., dim)."""

    def __init__(self, dim: int, *, gate_bias: float = -2.0, act_layer: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        if dim < 1:
            raise InputError(f"dim must be >= 1, got {dim}")
        self.dim = dim
        self.transform = nn.Linear(dim, dim)
        self.gate = nn.Linear(dim, dim)
        self.act = act_layer()
        with torch.no_grad():
            self.gate.bias.fill_(gate_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 1 or x.shape[-1] != self.dim or not x.is_floating_point():
            raise InputError(f"x must be floating (..., {self.dim}), got {x.dtype} {tuple(x.shape)}")
        t = torch.sigmoid(self.gate(x))  # (..., dim)
        self._record(t)
        return self.act(self.transform(x)) * t + x * (1 - t)
