"""k DCGAN generators and one (k + 1)-way discriminator: DCGAN, MAD-GAN and the collaborative GAN.

MAD-GAN (Ghosh et al. 2018, arXiv:1704.02906; github.com/rishabhd786/MAD-GAN): k generators
share one discriminator whose k + 1 softmax outputs say which generator made an image or
that it is real. The collaborative GAN of seed 001 (the knowledge transfer graph) uses the
same pair with spectral normalisation and the same ``z`` for every generator; its losses are
in :mod:`attnlab.objectives.gan_ktg`, MAD-GAN's in :mod:`attnlab.objectives.gan_madgan`.

DCGAN is the case k = 1. Deviation: its discriminator has 2 softmax outputs (generated,
real) instead of one sigmoid logit; softmax over two logits is the sigmoid of their
difference, so the losses and the functions the discriminator can represent are the same.
Generator and discriminator are the submodules ``generator`` and ``discriminator``, each
owned by its own optimiser in the recipe. With ``ema`` the model also keeps ``generator_ema``, an
exponential moving average of the generators' weights (Yazıcı et al. 2019, arXiv:1806.04498), which
then draws the evaluation's samples; the task moves it after every generator step. Its BatchNorm
statistics are measured on its own outputs before it samples (:meth:`MultiGAN.standing_statistics`,
BigGAN's "standing statistics", Brock et al. 2019, arXiv:1809.11096): the online generators'
statistics do not fit the averaged weights (copied, they gave washed-out samples: IS-like 1.64
against 2.73 with standing statistics, docs/gans.md).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.models._registry import register_model
from attnlab.models.gan.dcgan_discriminator import DCGANDiscriminator, DiscriminatorConfig
from attnlab.models.gan.dcgan_generator import DCGANGenerator, GeneratorConfig


@dataclass
class MultiGANConfig:
    num_generators: int = 1  # k; the discriminator has k + 1 outputs
    latent_dim: int = 100
    channels: int = 1
    image_size: int = 32
    g_width: int = 64
    d_width: int = 64
    spectral_norm: bool = False  # in the discriminator
    batched: bool = True  # the k generators as one grouped network
    taps: tuple[str, ...] = field(default_factory=tuple)  # generator layers to return
    ema: bool = False  # keep an exponential moving average of the generators for evaluation


@dataclass
class MultiGANOutput:
    images: torch.Tensor  # (B, k, C, H, W) in [-1, 1], generator i's image for z_b
    logits: torch.Tensor  # (B, k, k + 1) the discriminator's scores of those images (real last)
    features: dict[str, torch.Tensor] = field(default_factory=dict)  # tap -> (B, k, C', H', W')


class MultiGAN(nn.Module):
    """``forward(z)``: every generator's image for each z and the discriminator's k + 1 logits."""

    def __init__(self, config: MultiGANConfig) -> None:
        super().__init__()
        if config.num_generators < 1:
            raise ConfigError(f"num_generators must be >= 1, got {config.num_generators}")
        self.config = config
        self.generator = DCGANGenerator(
            GeneratorConfig(
                config.latent_dim,
                config.channels,
                config.image_size,
                config.g_width,
                config.num_generators,
                config.batched,
                tuple(config.taps),
            )
        )
        self.discriminator = DCGANDiscriminator(
            DiscriminatorConfig(
                config.channels,
                config.image_size,
                config.d_width,
                config.num_generators + 1,
                config.spectral_norm,
            )
        )
        # Not trained (no gradient, so no optimiser owns it); saved and resumed with the model.
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False) if config.ema else None

    @property
    def real_class(self) -> int:
        return self.config.num_generators

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.config.latent_dim, generator=generator)
        return z.to(next(self.parameters()).device)

    def _ema(self) -> DCGANGenerator:
        if self.generator_ema is None:
            raise ConfigError("the generators' moving average needs a model built with ema: true")
        return self.generator_ema

    @torch.no_grad()
    def update_ema(self, beta: float) -> None:
        """``generator_ema = beta * generator_ema + (1 - beta) * generator`` for every weight."""
        for p_ema, p in zip(self._ema().parameters(), self.generator.parameters(), strict=True):
            p_ema.lerp_(p, 1 - beta)

    @torch.no_grad()
    def standing_statistics(self, batches: int = 16, batch_size: int = 64, seed: int = 0) -> None:
        """The EMA generators' BatchNorm statistics as plain means over ``batches`` batches of their
        own outputs (noise from ``seed``, train mode), the running averages reset first."""
        ema = self._ema()
        norms = [m for m in ema.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # None: a cumulative mean over the batches that follow
        mode, noise = ema.training, torch.Generator().manual_seed(seed)
        ema.train()
        for _ in range(batches):
            ema(self.sample_noise(batch_size, noise))
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        ema.train(mode)

    def sampler(self) -> DCGANGenerator:
        """The generators that draw evaluation samples: the moving average when kept."""
        return self.generator if self.generator_ema is None else self.generator_ema

    def forward(self, z: torch.Tensor, *, averaged: bool = False) -> MultiGANOutput:
        """``averaged``: the images of :meth:`sampler` (the EMA generators when kept)."""
        images, features = (self.sampler() if averaged else self.generator)(z)
        logits = self.discriminator(images.flatten(0, 1)).unflatten(0, images.shape[:2])  # (B, k, k+1)
        return MultiGANOutput(images=images, logits=logits, features=features)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        return {"z": torch.randn(batch_size, self.config.latent_dim)}


def _preset(k: int, size: int, sn: bool, taps: tuple[str, ...] = ()) -> MultiGANConfig:
    return MultiGANConfig(num_generators=k, image_size=size, spectral_norm=sn, taps=taps)


register_model("dcgan-32", config=_preset(1, 32, False))(MultiGAN)
register_model("dcgan-64", config=_preset(1, 64, False))(MultiGAN)
register_model("dcgan-sn-32", config=_preset(1, 32, True))(MultiGAN)
register_model("dcgan-sn-64", config=_preset(1, 64, True))(MultiGAN)
register_model("madgan-k3-32", config=_preset(3, 32, False))(MultiGAN)
register_model("madgan-k3-64", config=_preset(3, 64, False))(MultiGAN)
register_model("ktg-gan-k3-32", config=_preset(3, 32, True, ("block1", "block2")))(MultiGAN)
register_model("ktg-gan-k3-64", config=_preset(3, 64, True, ("block2", "block3")))(MultiGAN)
