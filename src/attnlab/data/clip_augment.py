"""V-JEPA's pre-training augmentation of video clips: one random resized crop per clip, the same box
in every frame, resized back to the clip's size, then a random horizontal flip.

facebookresearch/jepa ``app/vjepa/transforms.py`` (``VideoTransform`` without auto-augment, motion
shift or random erasing, as every official pre-training config): the box is sampled as
``_get_param_spatial_crop`` (area fraction uniform in ``scale``, aspect ratio w/h log-uniform in
``ratio``, 10 tries, then the largest centre crop in range; :func:`attnlab.data.multicrop.sample_box`
samples the same way), the crop is resized bilinearly with ``align_corners=False`` and no
antialiasing, and the clip is flipped with probability 0.5. The official configs' ranges are the
defaults. Deviation: the draws come from a ``torch.Generator`` (the official uses Python's and
NumPy's global RNGs in the data loader's workers).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from attnlab.data.multicrop import sample_box
from attnlab.errors import ConfigError, InputError


@dataclass
class ClipAugment:
    """``task.augment``: the crop's area fraction and aspect-ratio ranges and the flip probability."""

    scale: tuple[float, float] = (0.3, 1.0)  # official random_resize_scale
    ratio: tuple[float, float] = (0.75, 1.35)  # official random_resize_aspect_ratio
    flip_p: float = 0.5  # official random_horizontal_flip=True

    def check(self, where: str) -> None:
        scale, ratio = tuple(self.scale), tuple(self.ratio)
        if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
            raise ConfigError(
                f"{where}.scale must be [low, high] with 0 < low <= high <= 1, got {self.scale}"
            )
        if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
            raise ConfigError(f"{where}.ratio must be [low, high] with 0 < low <= high, got {self.ratio}")
        if not 0 <= self.flip_p <= 1:
            raise ConfigError(f"{where}.flip_p must be in [0, 1], got {self.flip_p}")


def augment_clips(clips: torch.Tensor, config: ClipAugment, generator: torch.Generator) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, C, T, H, W): each clip cropped (one box for all its frames), resized
    back to H x W and flipped left-right with probability ``config.flip_p``."""
    if clips.dim() != 5 or not clips.is_floating_point():
        raise InputError(
            f"clips must be a float (B, C, T, H, W) tensor, got {tuple(clips.shape)} {clips.dtype}"
        )
    _, _, _, H, W = clips.shape
    out = torch.empty_like(clips)
    for b, clip in enumerate(clips):
        top, left, h, w = sample_box(H, W, config.scale, config.ratio, generator)
        crop = clip[:, :, top : top + h, left : left + w]  # (C, T, h, w): C as batch, frames as channels
        view = F.interpolate(crop, size=(H, W), mode="bilinear", align_corners=False)
        flip = float(torch.rand(1, generator=generator)) < config.flip_p
        out[b] = view.flip(-1) if flip else view
    return out
