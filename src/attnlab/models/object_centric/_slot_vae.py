"""What every object-centric model here shares: a per-slot Gaussian latent decoded by a
spatial broadcast decoder into RGB and a mask logit (MONet's component VAE, kept by ViMON,
AttnViMON and SFA)."""

from __future__ import annotations

from typing import Protocol

import torch

from attnlab.layers.broadcast_decoder import BroadcastDecoder


class SlotVAEConfig(Protocol):
    latent_dim: int
    image_size: int
    decoder_channels: int
    decoder_layers: int
    use_mean: bool  # posterior mean instead of a sample in training mode too


def slot_decoder(c: SlotVAEConfig) -> BroadcastDecoder:
    """z (N, D) -> (N, 4, S, S): RGB means and the mask logit of one slot."""
    return BroadcastDecoder(
        c.latent_dim,
        out_chans=4,
        image_size=c.image_size,
        channels=c.decoder_channels,
        num_layers=c.decoder_layers,
    )


def slot_latent(mu: torch.Tensor, logvar: torch.Tensor, c: SlotVAEConfig, *, training: bool) -> torch.Tensor:
    """A reparameterised sample in training mode; the mean in eval mode or with ``use_mean``."""
    if c.use_mean or not training:
        return mu
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp()


def example_video(c: SlotVAEConfig, batch_size: int, frames: int) -> dict[str, torch.Tensor]:
    """Valid inputs for ``forward`` (used by the registry-wide tests)."""
    return {"video": torch.rand(batch_size, frames, 3, c.image_size, c.image_size)}
