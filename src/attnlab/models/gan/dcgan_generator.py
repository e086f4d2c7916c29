"""DCGAN generator (Radford et al. 2016, arXiv:1511.06434), k of them in one grouped call.

Reference implementation: github.com/Newmu/dcgan_code (Theano) and the PyTorch example
github.com/pytorch/examples/tree/main/dcgan, whose layout we follow: ``z`` (B, latent, 1, 1)
-> ConvTranspose 4x4 to 4x4 maps -> [ConvTranspose 4x4 stride 2, BatchNorm, ReLU] doubling the
resolution and halving the channels -> ConvTranspose to ``channels`` maps and tanh. A 32x32
generator has 3 transposed convolutions after the first (width x 4, x 2, x 1), a 64x64 one 4.

Several generators (MAD-GAN, Ghosh et al. 2018, arXiv:1704.02906; the collaborative GAN of
seed 001) share one ``z``. With ``batched=True`` the k generators are one network whose
every layer has ``groups=k``: channel block i of each layer belongs to generator i, so
BatchNorm's per-channel statistics are each generator's own and the k networks stay
independent (tested against k separate generators with the same weights). ``batched=False``
loops over k separate generators (the reference for the grouped one and the benchmark).

Feature taps: ``taps`` names layers (``block0`` .. ``block{n-1}``: the ReLU outputs, coarse to
fine) whose outputs are returned as (B, k, C, H, W), for the knowledge transfer graph's
feature losses. Deviations: none in the architecture; weights are initialised N(0, 0.02) and
BatchNorm's scale N(1, 0.02), as the paper says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from attnlab.errors import ConfigError, InputError


@dataclass
class GeneratorConfig:
    latent_dim: int = 100
    channels: int = 1  # image channels
    image_size: int = 32  # 32 or 64 (any power of two >= 8)
    width: int = 64  # channels of the last hidden layer (ngf)
    num_generators: int = 1  # k
    batched: bool = True  # one grouped network (True) or a loop over k networks
    taps: tuple[str, ...] = field(default_factory=tuple)  # layers whose outputs forward returns


def num_blocks(image_size: int) -> int:
    """Hidden layers: 4x4 maps doubled up to ``image_size / 2`` (3 at 32x32, 4 at 64x64)."""
    steps = math.log2(image_size) if image_size > 0 else -1.0
    if steps != int(steps) or steps < 3:
        raise ConfigError(f"image_size must be a power of two >= 8, got {image_size}")
    return int(steps) - 2


def init_dcgan(module: nn.Module) -> None:
    """The paper's initialisation: conv weights N(0, 0.02); BatchNorm scale N(1, 0.02), bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class _GroupedStack(nn.Module):
    """``groups`` DCGAN generators as one network; (B, groups * latent, 1, 1) -> dict of maps."""

    def __init__(self, config: GeneratorConfig, groups: int) -> None:
        super().__init__()
        n = num_blocks(config.image_size)
        widths = [config.width * 2 ** (n - 1 - i) for i in range(n)]  # e.g. 256, 128, 64
        blocks: list[nn.Module] = []
        in_ch = config.latent_dim
        for i, out_ch in enumerate(widths):
            stride, pad = (1, 0) if i == 0 else (2, 1)
            conv = nn.ConvTranspose2d(
                groups * in_ch, groups * out_ch, 4, stride, pad, bias=False, groups=groups
            )
            blocks.append(nn.Sequential(conv, nn.BatchNorm2d(groups * out_ch), nn.ReLU(inplace=True)))
            in_ch = out_ch
        self.blocks = nn.ModuleList(blocks)
        self.to_image = nn.ConvTranspose2d(
            groups * in_ch, groups * config.channels, 4, 2, 1, bias=False, groups=groups
        )
        self.groups = groups

    def forward(self, h: torch.Tensor, taps: tuple[str, ...]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        features = {}
        for i, block in enumerate(self.blocks):
            h = block(h)
            if f"block{i}" in taps:
                features[f"block{i}"] = h.unflatten(1, (self.groups, -1))  # (B, groups, C, H, W)
        image = torch.tanh(self.to_image(h)).unflatten(1, (self.groups, -1))  # (B, groups, C, H, W)
        return image, features


class DCGANGenerator(nn.Module):
    """``z`` (B, latent_dim) -> images (B, k, channels, size, size) in [-1, 1] and tapped features."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        if config.num_generators < 1 or config.latent_dim < 1 or config.width < 1:
            raise ConfigError(f"the generator needs k, latent_dim and width >= 1, got {config}")
        self.layer_names = tuple(f"block{i}" for i in range(num_blocks(config.image_size)))
        unknown = [t for t in config.taps if t not in self.layer_names]
        if unknown:
            raise ConfigError(
                f"no generator layer '{unknown[0]}' to tap; its layers: {', '.join(self.layer_names)}"
            )
        self.config = config
        k = config.num_generators
        if config.batched:
            self.nets = nn.ModuleList([_GroupedStack(config, groups=k)])
        else:
            self.nets = nn.ModuleList([_GroupedStack(config, groups=1) for _ in range(k)])
        init_dcgan(self)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.config
        if z.dim() != 2 or z.shape[1] != cfg.latent_dim:
            raise InputError(f"z must be (B, {cfg.latent_dim}), got {tuple(z.shape)}")
        h = z[:, :, None, None]  # (B, latent, 1, 1)
        if cfg.batched:  # the same z for every generator: (B, k * latent, 1, 1)
            return self.nets[0](h.repeat(1, cfg.num_generators, 1, 1), cfg.taps)
        outputs = [net(h, cfg.taps) for net in self.nets]
        images = torch.cat([image for image, _ in outputs], dim=1)  # (B, k, C, H, W)
        features = {t: torch.cat([f[t] for _, f in outputs], dim=1) for t in cfg.taps}
        return images, features

    def load_from_separate(self, separate: list[DCGANGenerator]) -> None:
        """Copy k single generators (k = 1, unbatched or batched) into this grouped one."""
        if not self.config.batched or len(separate) != self.config.num_generators:
            raise ConfigError("load_from_separate needs a batched generator and one source per generator")
        mine = self.nets[0].state_dict()
        parts = [g.nets[0].state_dict() for g in separate]
        for key in mine:
            if key.endswith("num_batches_tracked"):
                mine[key] = parts[0][key].clone()
            else:  # conv (k*in, out, kh, kw) and BatchNorm (k*C,) both stack along dim 0
                mine[key] = torch.cat([p[key] for p in parts], dim=0)
        self.nets[0].load_state_dict(mine)
