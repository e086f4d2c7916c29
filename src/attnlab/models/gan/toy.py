"""A toy GAN for low-dimensional points (Goodfellow et al. 2014, arXiv:1406.2661).

The generator maps noise ``z ~ N(0, I)`` to a point, the discriminator a point to one
logit (real vs generated). Both are ReLU MLPs as in the 2D mixture experiments of
Unrolled GAN (Metz et al. 2017, arXiv:1611.02163) and VEEGAN (Srivastava et al. 2017):
``depth`` hidden layers of ``hidden_dim`` units. The two live in one module as the
submodules ``generator`` and ``discriminator`` so that a recipe gives each its own
optimiser (``optim: {generator: {...}, discriminator: {...}}``); the losses are in
:mod:`attnlab.objectives.gan`, the alternating updates in :mod:`attnlab.train.gan`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.models._registry import register_model


@dataclass
class ToyGANConfig:
    data_dim: int = 2
    latent_dim: int = 2
    hidden_dim: int = 128
    depth: int = 3  # hidden layers of each network


@dataclass
class GeneratorOutput:
    points: torch.Tensor  # (B, data_dim)


@dataclass
class DiscriminatorOutput:
    logits: torch.Tensor  # (B,) real-vs-generated logit per point


@dataclass
class GANOutput:
    points: torch.Tensor  # (B, data_dim) generated from the noise
    logits: torch.Tensor  # (B,) the discriminator's logits for those points


def _mlp(in_dim: int, hidden_dim: int, out_dim: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_dim if i == 0 else hidden_dim, hidden_dim), nn.ReLU()]
    layers.append(nn.Linear(hidden_dim if depth else in_dim, out_dim))
    return nn.Sequential(*layers)


class Generator(nn.Module):
    """Noise (B, latent_dim) -> :class:`GeneratorOutput`."""

    def __init__(self, config: ToyGANConfig) -> None:
        super().__init__()
        self.config = config
        self.net = _mlp(config.latent_dim, config.hidden_dim, config.data_dim, config.depth)

    def forward(self, z: torch.Tensor) -> GeneratorOutput:
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            raise InputError(f"z must be (B, {self.config.latent_dim}), got {tuple(z.shape)}")
        return GeneratorOutput(points=self.net(z))


class Discriminator(nn.Module):
    """Points (B, data_dim) -> :class:`DiscriminatorOutput`."""

    def __init__(self, config: ToyGANConfig) -> None:
        super().__init__()
        self.config = config
        self.net = _mlp(config.data_dim, config.hidden_dim, 1, config.depth)

    def forward(self, points: torch.Tensor) -> DiscriminatorOutput:
        if points.dim() != 2 or points.shape[1] != self.config.data_dim:
            raise InputError(f"points must be (B, {self.config.data_dim}), got {tuple(points.shape)}")
        return DiscriminatorOutput(logits=self.net(points).squeeze(-1))  # (B,)


@register_model("toy-gan", config=ToyGANConfig())
class ToyGAN(nn.Module):
    """Generator and discriminator MLPs; ``forward(z)`` generates points and scores them."""

    def __init__(self, config: ToyGANConfig) -> None:
        super().__init__()
        if min(config.data_dim, config.latent_dim, config.hidden_dim) < 1 or config.depth < 0:
            raise InputError(f"toy-gan needs positive dimensions and depth >= 0, got {config}")
        self.config = config
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` latent vectors (n, latent_dim) on the model's device."""
        z = torch.randn(n, self.config.latent_dim, generator=generator)
        return z.to(next(self.parameters()).device)

    def forward(self, z: torch.Tensor) -> GANOutput:
        points = self.generator(z).points
        return GANOutput(points=points, logits=self.discriminator(points).logits)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        """Valid inputs for ``forward`` (used by the registry-wide tests)."""
        return {"z": torch.randn(batch_size, self.config.latent_dim)}
