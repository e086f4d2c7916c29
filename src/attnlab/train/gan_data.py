"""Fashion-MNIST batches as GAN images: 28x28 normalised -> 32x32 or 64x64 in [-1, 1].

DCGAN's generators end in tanh, so images live in [-1, 1]. Fashion-MNIST's datamodule hands
normalised 28x28 images; they are un-normalised to [0, 1], zero-padded (the background is
black) to 32x32 and, for 64x64, upsampled bilinearly by 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attnlab.data.fashion_mnist import MEAN, STD
from attnlab.errors import ConfigError, InputError


def to_gan_images(inputs: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 1, 28, 28) normalised -> (B, 1, size, size) in [-1, 1]; size 32 or 64."""
    if inputs.dim() != 4 or inputs.shape[-2:] != (28, 28):
        raise InputError(f"expected Fashion-MNIST inputs (B, C, 28, 28), got {tuple(inputs.shape)}")
    if size not in (32, 64):
        raise ConfigError(f"GAN image size must be 32 or 64, got {size}")
    images = F.pad((inputs * STD + MEAN).clamp(0, 1), (2, 2, 2, 2))  # (B, 1, 32, 32)
    if size == 64:
        images = F.interpolate(images, scale_factor=2, mode="bilinear", align_corners=False)
    return images * 2 - 1
