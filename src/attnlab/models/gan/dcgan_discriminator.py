"""DCGAN discriminator (Radford et al. 2016, arXiv:1511.06434) with ``num_outputs`` logits.

Reference implementations: github.com/Newmu/dcgan_code and the PyTorch DCGAN example
(github.com/pytorch/examples/tree/main/dcgan): [Conv 4x4 stride 2, BatchNorm (not on the
first layer), LeakyReLU 0.2] halving the resolution and doubling the channels down to 4x4
maps, then a 4x4 convolution to the outputs. One output is the paper's real/fake logit;
MAD-GAN (Ghosh et al. 2018, arXiv:1704.02906, github.com/rishabhd786/MAD-GAN) gives k + 1:
which of the k generators made the image, or real (the last index).

``spectral_norm=True`` wraps every convolution in spectral normalisation (Miyato et al.
2018, arXiv:1802.05957; ``torch.nn.utils.parametrizations.spectral_norm``, one power
iteration per training forward) and, as SN-GAN's discriminators do, drops BatchNorm.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as sn

from attnlab.errors import ConfigError, InputError
from attnlab.models.gan.dcgan_generator import init_dcgan, num_blocks


@dataclass
class DiscriminatorConfig:
    channels: int = 1
    image_size: int = 32
    width: int = 64  # channels of the first layer (ndf)
    num_outputs: int = 2  # 1: the paper's logit; k + 1: MAD-GAN's classes (real last)
    spectral_norm: bool = False


class DCGANDiscriminator(nn.Module):
    """Images (B, channels, size, size) -> logits (B, num_outputs)."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        if config.num_outputs < 1 or config.width < 1:
            raise ConfigError(f"the discriminator needs num_outputs and width >= 1, got {config}")
        self.config = config
        wrap = sn if config.spectral_norm else (lambda m: m)
        layers: list[nn.Module] = []
        in_ch = config.channels
        for i in range(num_blocks(config.image_size)):
            out_ch = config.width * 2**i
            layers.append(wrap(nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=config.spectral_norm)))
            if i > 0 and not config.spectral_norm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.head = wrap(nn.Conv2d(in_ch, config.num_outputs, 4, 1, 0))
        if not config.spectral_norm:
            init_dcgan(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if images.dim() != 4 or images.shape[1:] != (cfg.channels, cfg.image_size, cfg.image_size):
            raise InputError(
                f"images must be (B, {cfg.channels}, {cfg.image_size}, {cfg.image_size}), "
                f"got {tuple(images.shape)}"
            )
        return self.head(self.features(images)).flatten(1)  # (B, num_outputs)
