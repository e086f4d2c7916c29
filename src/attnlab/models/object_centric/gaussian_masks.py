"""Masks that are one Gaussian blob per slot, fitted to the slot attention (SFA's ``masks="gaussian"``).

With the attention itself as the mixture's weights (``masks="attention"``), a slot may hold two
objects of one colour that stand apart at no cost: it paints one colour on both
(docs/video_reasoning.md). Here each slot's weight at a pixel is one Gaussian in (y, x): the
attention-weighted mean and (diagonal) variance of the token grid's cell centres, times the slot's
share of the attention (one E-step of a Gaussian mixture over positions fitted to the attention):
a slot whose attention covers two objects apart covers the floor between them too, and pays for
it in the reconstruction. The background's attention spreads over the frame, so its blob is broad.
Measured on CLEVRER-lite: the slots stay at one (the masks' gradient moves a blob but does not
sharpen the attention under it; docs/video_reasoning.md).
"""

from __future__ import annotations

import math

import torch

from attnlab.layers.pos_embed import cell_centres


def gaussian_log_masks(attention: torch.Tensor, size: tuple[int, int], power: float = 1.0) -> torch.Tensor:
    """Attention over slots on the token grid (N, K, h, w) -> log masks (N, K, H, W) at ``size``,
    summing to 1 over slots after exp. Slot k's blob: mean c_k and variance v_k (per axis) of the
    cells' centres weighted by its attention to the ``power``, v_k plus a cell's own variance
    1 / (12 h^2) (a uniform over a cell of side 1 / h), so that a slot on one cell keeps a blob the
    size of the cell; times the slot's share of the attention. A power above 1 keeps the soft
    attention's tails (a slot's 1 % of every floor cell) from pulling its blob over the frame."""
    N, K, h, w = attention.shape
    H, W = size
    cells = cell_centres(h, w).to(attention)  # (h*w, 2)
    mass = attention.flatten(2)  # (N, K, h*w)
    total = mass.sum(-1, keepdim=True)  # (N, K, 1)
    sharp = mass**power
    weights = sharp / sharp.sum(-1, keepdim=True).clamp_min(torch.finfo(mass.dtype).tiny)  # (N, K, h*w)
    centre = weights @ cells  # (N, K, 2)
    spread = weights @ cells**2 - centre**2  # (N, K, 2), E[p^2] - E[p]^2
    var = spread.clamp_min(0) + torch.tensor([1 / (12 * h * h), 1 / (12 * w * w)]).to(attention)
    pixels = cell_centres(H, W).to(attention)  # (H*W, 2)
    diff = pixels[None, None] - centre[:, :, None]  # (N, K, H*W, 2)
    log_density = -0.5 * (diff**2 / var[:, :, None] + torch.log(2 * math.pi * var[:, :, None])).sum(-1)
    log_share = torch.log((total / (h * w)).clamp_min(torch.finfo(mass.dtype).tiny))  # (N, K, 1)
    log_masks = (log_share + log_density).log_softmax(dim=1)  # (N, K, H*W)
    return log_masks.view(N, K, H, W)
