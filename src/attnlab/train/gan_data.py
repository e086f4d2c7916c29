"""Dataset batches as GAN images in [-1, 1]: Fashion-MNIST or CIFAR-10, at 32x32 or 64x64.

DCGAN's generators end in tanh, so images live in [-1, 1]. The datamodules hand normalised
images; they are un-normalised to [0, 1] with their dataset's statistics. Fashion-MNIST's 28x28
are zero-padded (the background is black) to 32x32; CIFAR-10 is 32x32 already. For 64x64 the
32x32 images are upsampled bilinearly by 2. The dataset is told apart by the images' shape
(:func:`gan_domain`), which also names the domain classifier's cache.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attnlab.data import cifar_data, fashion_mnist
from attnlab.errors import ConfigError, InputError

# (channels, side) of a datamodule's images -> (domain name, per-channel mean, std, padding to 32)
_DOMAINS = {
    (1, 28): ("fashion-mnist", (fashion_mnist.MEAN,), (fashion_mnist.STD,), 2),
    (3, 32): ("cifar10", cifar_data.MEAN, cifar_data.STD, 0),
}


def gan_domain(inputs: torch.Tensor) -> str:
    """The dataset of a normalised batch (B, C, H, W): ``fashion-mnist`` or ``cifar10``."""
    return _domain(inputs)[0]


def _domain(inputs: torch.Tensor) -> tuple[str, tuple[float, ...], tuple[float, ...], int]:
    key = (int(inputs.shape[1]), int(inputs.shape[-1])) if inputs.dim() == 4 else None
    if key not in _DOMAINS or inputs.shape[-2] != inputs.shape[-1]:
        raise InputError(f"expected Fashion-MNIST (B, 1, 28, 28) or CIFAR-10 (B, 3, 32, 32) inputs, "
                         f"got {tuple(inputs.shape)}")  # fmt: skip
    return _DOMAINS[key]


def to_gan_images(inputs: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, H, W) normalised -> (B, C, size, size) in [-1, 1]; size 32 or 64."""
    if size not in (32, 64):
        raise ConfigError(f"GAN image size must be 32 or 64, got {size}")
    _, mean, std, pad = _domain(inputs)
    shape = (1, len(mean), 1, 1)
    mean_t, std_t = inputs.new_tensor(mean).view(shape), inputs.new_tensor(std).view(shape)
    images = F.pad((inputs * std_t + mean_t).clamp(0, 1), (pad,) * 4)  # (B, C, 32, 32)
    if size == 64:
        images = F.interpolate(images, scale_factor=2, mode="bilinear", align_corners=False)
    return images * 2 - 1
