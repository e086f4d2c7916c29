"""What a soft mask shows of its frame: the colour of its pixels, their spread, and the mask's extent.

A slot's latent holds what its training asked it to paint; on CLEVRER-lite (chromaticity targets)
that is the object's colour and not its shape or material (docs/video_reasoning.md, "What the slot
tokens hold"). These features read the frame itself under the slot's mask instead: a metal's
highlights and a rubber's flat shading spread its pixels differently, and a cube, a sphere and a
cylinder fill boxes of different heights and widths. ``data.slot_pixels`` (and the ``aloe-slots``
model's ``slot_pixels``) append them to the slot tokens; the k-means floor
(:mod:`attnlab.data.cluster_tokens`) uses the colour part, and all of them with ``data.slot_pixels``.
"""

from __future__ import annotations

import torch

from attnlab.errors import InputError

COLOUR_DIM = 6  # mean rgb, standard deviation of rgb
PIXEL_DIM = COLOUR_DIM + 2  # + the standard deviation of y and of x under the mask


def _checked(video: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Masks (B, T, K[, 1], H, W) -> (B, T, K, H, W), checked against video (B, T, 3, H, W)."""
    if masks.dim() == 6 and masks.shape[3] == 1:
        masks = masks.squeeze(3)
    if video.dim() != 5 or video.shape[2] != 3 or not video.is_floating_point():
        raise InputError(f"video must be floating (B, T, 3, H, W), got {video.dtype} {tuple(video.shape)}")
    if masks.dim() != 5 or not masks.is_floating_point():
        raise InputError(f"masks must be floating (B, T, K, H, W), got {masks.dtype} {tuple(masks.shape)}")
    if masks.shape[:2] != video.shape[:2] or masks.shape[-2:] != video.shape[-2:]:
        raise InputError(f"masks {tuple(masks.shape)} do not fit video {tuple(video.shape)}")
    return masks


def _moments(values: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """values (B, T, C, N), masks (B, T, K, N) -> (B, T, K, 2C): the mask-weighted mean and standard
    deviation of each channel. An empty mask gives zeros."""
    mass = masks.sum(-1, keepdim=True).clamp_min(1e-6)  # (B, T, K, 1)
    mean = torch.einsum("btkn,btcn->btkc", masks, values) / mass  # (B, T, K, C)
    square = torch.einsum("btkn,btcn->btkc", masks, values.square()) / mass
    return torch.cat([mean, _sqrt_or_zero(square - mean.square())], dim=-1)


def _sqrt_or_zero(var: torch.Tensor) -> torch.Tensor:
    """sqrt(var) where var > 0, else 0, with a zero gradient there. A flat region's variance is 0 or
    rounds below it, and ``var.clamp_min(0).sqrt()`` then back-propagates 0 * inf = NaN into the
    encoder (``aloe-slots`` trains it through these features)."""
    positive = var > 0
    return torch.where(positive, var.where(positive, 1.0).sqrt(), 0.0)


def mask_colour(video: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Video (B, T, 3, H, W) and soft masks (B, T, K[, 1], H, W) -> (B, T, K, 6): the mask-weighted
    mean and standard deviation of each rgb channel."""
    masks = _checked(video, masks)
    return _moments(video.flatten(3), masks.flatten(3))


def mask_pixels(video: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Video (B, T, 3, H, W) and soft masks (B, T, K[, 1], H, W) -> (B, T, K, 8): :func:`mask_colour`
    and the mask-weighted standard deviation of y and of x (pixel centres in [0, 1]), its extent."""
    masks = _checked(video, masks)
    B, T, _, H, W = video.shape
    ys = ((torch.arange(H, device=video.device, dtype=video.dtype) + 0.5) / H)[:, None].expand(H, W)
    xs = ((torch.arange(W, device=video.device, dtype=video.dtype) + 0.5) / W)[None, :].expand(H, W)
    where = torch.stack([ys, xs]).reshape(1, 1, 2, H * W).expand(B, T, 2, H * W)  # (B, T, 2, H*W)
    flat = masks.flatten(3)  # (B, T, K, H*W)
    colour = _moments(video.flatten(3), flat)  # (B, T, K, 6)
    extent = _moments(where, flat)[..., 2:]  # (B, T, K, 2): the spreads; the centroid is in mask_summary
    return torch.cat([colour, extent], dim=-1)
