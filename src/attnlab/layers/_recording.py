"""How a layer reports its attention weights to :func:`attnlab.explain.capture`.

Every attention layer derives from :class:`RecordsAttention`. Normally its sink is
``None`` and the layer runs its fast path untouched (one attribute check). Inside
``capture(model)`` each such layer gets a sink bound to its qualified module name;
the layer then also materialises its attention weights and passes them to the sink.

The sink's ``differentiable`` flag asks the layer to compute its output *from* the
recorded weights (an eager path), so gradients with respect to the weights exist,
which gradient-weighted attention methods (Chefer et al. 2021) need. Otherwise the
layer keeps its fused output bit for bit and records detached weights beside it.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn


class AttentionSink(Protocol):
    """Receives one layer's attention weights for one call."""

    differentiable: bool

    def __call__(self, weights: torch.Tensor) -> None: ...


class RecordsAttention(nn.Module):
    """Base class of every layer that has attention weights to show."""

    _attn_sink: AttentionSink | None = None

    def _record(self, weights: torch.Tensor) -> None:
        sink = self._attn_sink
        if sink is not None:
            sink(weights if sink.differentiable else weights.detach())

    @property
    def _recording(self) -> bool:
        return self._attn_sink is not None

    @property
    def _recording_differentiable(self) -> bool:
        sink = self._attn_sink
        return sink is not None and sink.differentiable
