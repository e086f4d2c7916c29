"""StarGAN v2 (Choi et al. 2020, "StarGAN v2: Diverse Image Synthesis for Multiple Domains",
arXiv:1912.01865) and the class-aware variant of the test-time-augmentation thesis (seed 001).

Reference: clovaai/stargan-v2 ``core/model.py`` and ``core/solver.py``; parameter names are the
reference's (``generator.encode.0.conv1.weight``, ``mapping_network.unshared.1.6.bias``, ...).

Four networks, all conditioned on a domain index y:

* generator G(x, s): encoder (from_rgb conv, ``log2(size) - 4`` downsampling :class:`ResBlk`\\ s with
  instance norm, 2 bottleneck ones), decoder (the mirror image in :class:`AdainResBlk`\\ s whose AdaIN
  reads the style code s), to_rgb (IN, LeakyReLU, 1x1 conv);
* mapping network F(z, y): 4 shared ReLU layers of ``hidden_dim``, then one 4-layer head per domain
  producing a ``style_dim`` code; the head of domain y is taken;
* style encoder E(x, y): conv, ``log2(size) - 2`` downsampling ResBlks to 4x4, a 4x4 conv to 1x1,
  one linear head per domain;
* discriminator D(x, y): the style encoder's trunk with a 1x1 conv to one logit per domain.

Widths: the first conv has ``2**14 // size`` channels (``dim_in`` overrides it for small images,
where the reference's rule gives 512 at 32x32), doubling per downsampling up to ``max_conv_dim``.

Class-aware (``num_classes > 0``, the thesis): a classifier C on the generator encoder's output
``G_enc(x)`` (:class:`ClassHead`: two strided convolutions, global average pool, linear): since
the decoder alone adds the style, the encoder's features should be domain invariant, and C trained
on labelled source images classifies both domains. C is not used to translate.

The EMA copies of G, F and E (``ema``, updated by the task with beta 0.999) are what translates at
evaluation, as the reference's ``nets_ema``. Deviations: the EMA copies start equal to the trained
networks (the reference deep-copies them before He initialisation, so its EMA starts from PyTorch's
default initialisation and keeps 0.999**k of it after k steps); no high-pass/landmark branch
(``w_hpf = 0``, the reference's AFHQ setting).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.models._registry import register_model
from attnlab.models.gan.stargan2_blocks import SLOPE, AdainResBlk, ResBlk

EMA_PARTS = ("generator", "mapping_network", "style_encoder")  # the reference's nets_ema


@dataclass
class StarGAN2Config:
    img_size: int = 256
    num_domains: int = 2
    latent_dim: int = 16
    style_dim: int = 64
    hidden_dim: int = 512  # the mapping network's width (the reference hard-codes 512)
    max_conv_dim: int = 512
    dim_in: int = 0  # first conv's width; 0: the reference's 2**14 // img_size
    num_classes: int = 0  # > 0: the thesis's class-aware head on G_enc(x)

    @property
    def first_width(self) -> int:
        return self.dim_in or 2**14 // self.img_size

    def check(self) -> None:
        size = self.img_size
        if size < 16 or size & (size - 1):
            raise ConfigError(f"stargan2 needs img_size a power of two >= 16, got {size}")
        if self.num_domains < 1 or min(self.latent_dim, self.style_dim, self.hidden_dim) < 1:
            raise ConfigError(
                f"stargan2 needs num_domains, latent_dim, style_dim, hidden_dim >= 1, got {self}"
            )
        if self.first_width < 1 or self.max_conv_dim < 1 or self.num_classes < 0:
            raise ConfigError(f"stargan2 needs dim_in, max_conv_dim >= 1 and num_classes >= 0, got {self}")


def _pick(per_domain: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B, num_domains, ...) -> (B, ...): each row's own domain."""
    return per_domain[torch.arange(len(y), device=y.device), y]


class Generator(nn.Module):
    """x (B, 3, S, S), style s (B, style_dim) -> (B, 3, S, S)."""

    def __init__(self, c: StarGAN2Config) -> None:
        super().__init__()
        dim_in = c.first_width
        self.from_rgb = nn.Conv2d(3, dim_in, 3, 1, 1)
        self.encode = nn.ModuleList()
        self.decode = nn.ModuleList()
        self.to_rgb = nn.Sequential(
            nn.InstanceNorm2d(dim_in, affine=True), nn.LeakyReLU(SLOPE), nn.Conv2d(dim_in, 3, 1, 1, 0)
        )
        dim_out = dim_in
        for _ in range(int(math.log2(c.img_size)) - 4):
            dim_out = min(dim_in * 2, c.max_conv_dim)
            self.encode.append(ResBlk(dim_in, dim_out, normalize=True, downsample=True))
            self.decode.insert(0, AdainResBlk(dim_out, dim_in, c.style_dim, upsample=True))  # mirror order
            dim_in = dim_out
        for _ in range(2):  # bottleneck
            self.encode.append(ResBlk(dim_out, dim_out, normalize=True))
            self.decode.insert(0, AdainResBlk(dim_out, dim_out, c.style_dim))
        self.feature_dim = dim_out

    def encoder(self, x: torch.Tensor) -> torch.Tensor:
        """G_enc: (B, 3, S, S) -> (B, feature_dim, S / 2**(log2 S - 4), ...): the style-free content."""
        h = self.from_rgb(x)
        for block in self.encode:
            h = block(h)
        return h

    def decoder(self, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        for block in self.decode:
            h = block(h, s)
        return self.to_rgb(h)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x), s)


class MappingNetwork(nn.Module):
    """z (B, latent_dim), domain y (B,) -> style code (B, style_dim)."""

    def __init__(self, c: StarGAN2Config) -> None:
        super().__init__()
        width = c.hidden_dim
        shared: list[nn.Module] = [nn.Linear(c.latent_dim, width), nn.ReLU()]
        for _ in range(3):
            shared += [nn.Linear(width, width), nn.ReLU()]
        self.shared = nn.Sequential(*shared)
        self.unshared = nn.ModuleList(
            nn.Sequential(
                *(m for _ in range(3) for m in (nn.Linear(width, width), nn.ReLU())),
                nn.Linear(width, c.style_dim),
            )
            for _ in range(c.num_domains)
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.shared(z)
        return _pick(torch.stack([head(h) for head in self.unshared], dim=1), y)  # (B, D, S) -> (B, S)


def _trunk(c: StarGAN2Config) -> tuple[list[nn.Module], int]:
    """The style encoder's and discriminator's shared layers: (B, 3, S, S) -> (B, width, 1, 1)."""
    dim_in = dim_out = c.first_width
    layers: list[nn.Module] = [nn.Conv2d(3, dim_in, 3, 1, 1)]
    for _ in range(int(math.log2(c.img_size)) - 2):  # down to 4x4
        dim_out = min(dim_in * 2, c.max_conv_dim)
        layers.append(ResBlk(dim_in, dim_out, downsample=True))
        dim_in = dim_out
    layers += [nn.LeakyReLU(SLOPE), nn.Conv2d(dim_out, dim_out, 4, 1, 0), nn.LeakyReLU(SLOPE)]
    return layers, dim_out


class StyleEncoder(nn.Module):
    """Image x (B, 3, S, S), domain y (B,) -> its style code in domain y (B, style_dim)."""

    def __init__(self, c: StarGAN2Config) -> None:
        super().__init__()
        layers, width = _trunk(c)
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList(nn.Linear(width, c.style_dim) for _ in range(c.num_domains))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.shared(x).flatten(1)  # (B, width)
        return _pick(torch.stack([head(h) for head in self.unshared], dim=1), y)


class Discriminator(nn.Module):
    """Image x (B, 3, S, S), domain y (B,) -> real-vs-fake logit for domain y (B,)."""

    def __init__(self, c: StarGAN2Config) -> None:
        super().__init__()
        layers, width = _trunk(c)
        self.main = nn.Sequential(*layers, nn.Conv2d(width, c.num_domains, 1, 1, 0))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _pick(self.main(x).flatten(1), y)  # (B, num_domains) -> (B,)


class ClassHead(nn.Module):
    """The thesis's C: G_enc features (B, C, h, w) -> class logits (B, num_classes).

    The thesis does not give C's layers. Two stride-2 3x3 convolutions (C -> 2C -> 2C, LeakyReLU)
    before global pooling and a linear layer: G_enc is shallow (one downsampling at 32x32), and a
    linear layer on its globally pooled features sees textures, not shapes (measured: chance level
    on rendered digits after 700 steps)."""

    def __init__(self, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        width = 2 * feature_dim
        self.convs = nn.Sequential(
            nn.Conv2d(feature_dim, width, 3, 2, 1), nn.LeakyReLU(SLOPE), nn.Conv2d(width, width, 3, 2, 1)
        )
        self.fc = nn.Linear(width, num_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(F.leaky_relu(self.convs(F.leaky_relu(h, SLOPE)), SLOPE).mean(dim=(2, 3)))


@dataclass
class TranslationOutput:
    """One latent-guided translation x -> domain y with z, and what each network says of it."""

    fake: torch.Tensor  # (B, 3, S, S) G(x, F(z, y))
    style: torch.Tensor  # (B, style_dim) F(z, y)
    style_pred: torch.Tensor  # (B, style_dim) E(fake, y)
    logits: torch.Tensor  # (B,) D(fake, y)
    class_logits: torch.Tensor | None  # (B, num_classes) C(G_enc(x)); None without the head


def he_init(module: nn.Module) -> None:
    """The reference's initialisation: He normal (fan in, ReLU gain) for every conv and linear
    weight, zero biases; norms keep PyTorch's (scale 1, shift 0)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@register_model("stargan2-256", config=StarGAN2Config())
# CPU-sized: widths 16-64 take 0.8 s per batch of 8 (all four updates) on one core, 32-128 2 s
@register_model("stargan2-32", config=StarGAN2Config(img_size=32, dim_in=16, max_conv_dim=64, hidden_dim=128))
@register_model(
    "stargan2_class_aware-32",
    config=StarGAN2Config(img_size=32, dim_in=16, max_conv_dim=64, hidden_dim=128, num_classes=10),
)
class StarGAN2(nn.Module):
    """G, F, E, D (and C when class-aware), each its own optimiser's; ``ema`` holds the averaged
    G, F, E (no gradients) that translate at evaluation."""

    def __init__(self, config: StarGAN2Config) -> None:
        super().__init__()
        config.check()
        self.config = config
        self.generator = Generator(config)
        self.mapping_network = MappingNetwork(config)
        self.style_encoder = StyleEncoder(config)
        self.discriminator = Discriminator(config)
        self.classifier = (
            ClassHead(self.generator.feature_dim, config.num_classes) if config.num_classes else None
        )
        he_init(self)
        self.ema = nn.ModuleDict({name: copy.deepcopy(getattr(self, name)) for name in EMA_PARTS})
        self.ema.requires_grad_(False)

    def check_inputs(self, images: torch.Tensor, domains: torch.Tensor | None = None) -> None:
        """One line for images that are not (B, 3, S, S) floats or domains outside the model's."""
        s = self.config.img_size
        if images.dim() != 4 or images.shape[1:] != (3, s, s) or not images.is_floating_point():
            raise InputError(
                f"stargan2 translates (B, 3, {s}, {s}) float images in [-1, 1], got "
                f"{tuple(images.shape)} {images.dtype}"
            )
        if domains is None:
            return
        if domains.shape != images.shape[:1] or domains.dtype != torch.int64:
            raise InputError(f"domains must be (B,) int64, got {tuple(domains.shape)} {domains.dtype}")
        if len(domains) and not 0 <= int(domains.min()) <= int(domains.max()) < self.config.num_domains:
            raise InputError(f"domains must be in [0, {self.config.num_domains}), got {domains.tolist()}")

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """C(G_enc(x)): (B, 3, S, S) -> (B, num_classes)."""
        if self.classifier is None:
            raise ConfigError(
                "this StarGAN v2 has no class head: set model.num_classes (the class-aware variant)"
            )
        return self.classifier(self.generator.encoder(images))

    @torch.no_grad()
    def update_ema(self, beta: float) -> None:
        """``ema = beta * ema + (1 - beta) * online`` for G, F, E (the reference's moving_average)."""
        for name in EMA_PARTS:
            online, averaged = getattr(self, name).parameters(), self.ema[name].parameters()
            for p, p_ema in zip(online, averaged, strict=True):
                p_ema.lerp_(p, 1 - beta)

    @torch.no_grad()
    def translate(self, images: torch.Tensor, domains: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Latent-guided translation with the EMA networks: G_ema(x, F_ema(z, y)), (B, 3, S, S)."""
        self.check_inputs(images, domains)
        ema = self.ema
        return ema["generator"](images, ema["mapping_network"](z, domains))

    def forward(self, images: torch.Tensor, domains: torch.Tensor, z: torch.Tensor) -> TranslationOutput:
        """Translate ``images`` into ``domains`` with latents ``z`` (B, latent_dim) using the trained
        (not the EMA) networks, and score the result with D and E."""
        self.check_inputs(images, domains)
        if z.shape != (len(images), self.config.latent_dim):
            raise InputError(f"z must be (B, {self.config.latent_dim}), got {tuple(z.shape)}")
        style = self.mapping_network(z, domains)
        h = self.generator.encoder(images)
        fake = self.generator.decoder(h, style)
        return TranslationOutput(
            fake=fake,
            style=style,
            style_pred=self.style_encoder(fake, domains),
            logits=self.discriminator(fake, domains),
            class_logits=self.classifier(h) if self.classifier is not None else None,
        )

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        """Valid inputs for ``forward`` (used by the registry-wide tests)."""
        c = self.config
        return {
            "images": torch.rand(batch_size, 3, c.img_size, c.img_size) * 2 - 1,
            "domains": torch.arange(batch_size) % c.num_domains,
            "z": torch.randn(batch_size, c.latent_dim),
        }
