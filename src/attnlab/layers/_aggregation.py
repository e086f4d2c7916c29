"""SAN's aggregation y_i = sum_k w[i, k] ⊙ v[i + d (k - K // 2)] in 1D without unfolding.

The straightforward way (:func:`attnlab.layers.pairwise.footprint`) copies the values into a
(B, C, K, N) tensor and keeps it for the backward pass: K times the values' memory. The official
SAN code avoids that with CUDA aggregation kernels. This is the same idea in PyTorch: a custom
autograd function that loops over the K offsets, reads shifted slices of the reflection-padded
values (views, no copy), and keeps only the padded values and the weights for the backward pass,
which loops over the offsets again:

    dL/dw[b, a, k, i] = sum_s g[b, s, a, i] v_pad[b, s, a, i + d k]
    dL/dv_pad[b, s, a, i + d k] += g[b, s, a, i] w[b, a, k, i]

Output channel c = s * A + a uses attention channel a (SAN's channel sharing). The reflection
padding stays an ordinary autograd op, so its backward folds the border gradients back.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


class _ShiftedSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, padded: torch.Tensor, weights: torch.Tensor, dilation: int) -> torch.Tensor:
        B, C, _ = padded.shape
        _, A, K, N = weights.shape
        out = padded.new_zeros(B, C // A, A, N)  # (B, S, A, N)
        for k in range(K):
            shifted = padded[:, :, k * dilation : k * dilation + N].view(B, C // A, A, N)  # (B, S, A, N)
            out.addcmul_(shifted, weights[:, None, :, k])
        ctx.save_for_backward(padded, weights)
        ctx.dilation = dilation
        return out.flatten(1, 2)  # (B, C, N)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        padded, weights = ctx.saved_tensors
        d = ctx.dilation
        B, C, _ = padded.shape
        _, A, K, N = weights.shape
        g = grad.reshape(B, C // A, A, N)  # (B, S, A, N)
        grad_padded = torch.zeros_like(padded) if ctx.needs_input_grad[0] else None
        grad_weights = torch.empty_like(weights) if ctx.needs_input_grad[1] else None
        for k in range(K):
            if grad_weights is not None:
                shifted = padded[:, :, k * d : k * d + N].view(B, C // A, A, N)  # (B, S, A, N)
                grad_weights[:, :, k] = (g * shifted).sum(dim=1)
            if grad_padded is not None:
                grad_padded[:, :, k * d : k * d + N] += (g * weights[:, None, :, k]).flatten(1, 2)
        return grad_padded, grad_weights, None


def aggregate_1d(
    values: torch.Tensor, weights: torch.Tensor, kernel_size: int, dilation: int
) -> torch.Tensor:
    """(B, C, N) values, (B, A, K, N) weights -> (B, C, N): footprint-weighted sums, reflection-padded."""
    pad = dilation * (kernel_size // 2)
    padded = F.pad(values, (pad, pad), mode="reflect")  # (B, C, N + 2 pad)
    out: torch.Tensor = _ShiftedSum.apply(padded, weights, dilation)  # type: ignore[no-untyped-call]
    return out
