"""How far the pixels each slot holds lie from one value per slot: k-means' objective with the
slots as clusters, for any per-pixel feature (the motion, the position).

A term on the masks alone: no decoder can paint it away, so a slot that holds two objects pays for
what tells them apart (their motions, their places) whatever the slot's colour explains.
"""

from __future__ import annotations

import torch

from attnlab.errors import InputError


def slot_spread(masks: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Masks (B, T, K, 1, H, W), features (B, T, C, H, W) -> (B, T, K): sum_p m_kp |f_p - mu_k|^2.

    mu_k, the mask-weighted mean of the features, is the least-squares fit of one value to slot k's
    pixels, so the gradient through it is 0 and only the masks learn from the spread."""
    if masks.dim() != 6 or masks.shape[3] != 1:
        raise InputError(f"masks must be (B, T, K, 1, H, W), got {tuple(masks.shape)}")
    B, T, _, _, H, W = masks.shape
    if features.dim() != 5 or features.shape[:2] != (B, T) or features.shape[-2:] != (H, W):
        raise InputError(
            f"features must be (B, T, C, H, W) = ({B}, {T}, C, {H}, {W}), got {tuple(features.shape)}"
        )
    m = masks[:, :, :, 0]  # (B, T, K, H, W)
    mass = m.sum(dim=(-2, -1))  # (B, T, K)
    mu = torch.einsum("btkhw,btchw->btkc", m, features) / mass.clamp_min(1e-8)[..., None]  # (B, T, K, C)
    off = features[:, :, None] - mu[..., None, None]  # (B, T, K, C, H, W): each pixel from each slot's fit
    return torch.einsum("btkhw,btkchw->btk", m, off.square())


def slot_compactness(masks: torch.Tensor, free_background: bool = True) -> torch.Tensor:
    """Masks (B, T, K, 1, H, W) -> (B, T): the spread of each slot's pixels around its centre, (y, x)
    in [0, 1], summed over the slots but the one with the most mass in the frame (over every slot
    without ``free_background``: k-means' position term, which splits the floor into places too).

    The background spans the frame, so it is left free, and every other slot is asked to be one place:
    the split of SPACE (Lin et al. 2020, arXiv:2001.02407), whose foreground objects are local glimpses
    and whose background is not. Two objects of one colour apart on the floor then cost a slot that
    holds both what their distance costs, as they cost k-means on colour and position."""
    if masks.dim() != 6 or masks.shape[3] != 1:
        raise InputError(f"masks must be (B, T, K, 1, H, W), got {tuple(masks.shape)}")
    B, T, _, _, H, W = masks.shape
    ys = torch.linspace(0, 1, H, device=masks.device, dtype=masks.dtype)
    xs = torch.linspace(0, 1, W, device=masks.device, dtype=masks.dtype)
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"))  # (2, H, W)
    spread = slot_spread(masks, grid.expand(B, T, 2, H, W))  # (B, T, K)
    if not free_background:
        return spread.sum(dim=2)
    background = masks.sum(dim=(-3, -2, -1)).argmax(dim=2, keepdim=True)  # (B, T, 1)
    return spread.sum(dim=2) - spread.gather(2, background)[..., 0]
