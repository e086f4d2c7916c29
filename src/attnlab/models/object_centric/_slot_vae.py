"""What every object-centric model here shares: a per-slot Gaussian latent decoded by a
spatial broadcast decoder into RGB and a mask logit (MONet's component VAE, kept by ViMON,
AttnViMON and SFA)."""

from __future__ import annotations

from typing import Protocol

import torch

from attnlab.errors import ConfigError
from attnlab.layers.broadcast_decoder import BroadcastDecoder


class SlotVAEConfig(Protocol):
    latent_dim: int
    image_size: int
    decoder_channels: int
    decoder_layers: int
    use_mean: bool  # posterior mean instead of a sample in training mode too


def slot_decoder(c: SlotVAEConfig, colour_channels: int = 3) -> BroadcastDecoder:
    """z (N, D) -> (N, C + 1, S, S): one slot's C means (RGB, then any channels the task adds)
    and its mask logit."""
    return BroadcastDecoder(
        c.latent_dim,
        out_chans=colour_channels + 1,
        image_size=c.image_size,
        channels=c.decoder_channels,
        num_layers=c.decoder_layers,
    )


def slot_latent(mu: torch.Tensor, logvar: torch.Tensor, c: SlotVAEConfig, *, training: bool) -> torch.Tensor:
    """A reparameterised sample in training mode; the mean in eval mode or with ``use_mean``."""
    if c.use_mean or not training:
        return mu
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp()


def check_masks(masks: str) -> None:
    if masks not in ("decoder", "attention"):
        raise ConfigError(f"masks must be 'decoder' or 'attention', got {masks!r}")


def mix_with_attention(decoded: torch.Tensor, log_masks: torch.Tensor) -> torch.Tensor:
    """``decoded`` (2, B, T, K, C + 1, H, W) for z and z_pred with the reconstruction's mask logits
    replaced by ``log_masks`` (B, T, K, 1, H, W), log weights that sum to 1 over slots: the
    softmax over slots of the new logits is the attention itself, so the reconstruction mixes
    with the attention (as MONet mixes) and the decoder's masks serve the prediction alone."""
    recon = torch.cat([decoded[0, ..., :-1, :, :], log_masks], dim=-3)  # (B, T, K, C + 1, H, W)
    return torch.stack([recon, decoded[1]])  # (2, B, T, K, C + 1, H, W)


def example_video(c: SlotVAEConfig, batch_size: int, frames: int) -> dict[str, torch.Tensor]:
    """Valid inputs for ``forward`` (used by the registry-wide tests)."""
    return {"video": torch.rand(batch_size, frames, 3, c.image_size, c.image_size)}
