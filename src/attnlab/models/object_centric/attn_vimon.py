"""AttnViMON: ViMON with its temporal recurrences replaced by attention (Nakada & Asoh).

Seed 000: H. Nakada and H. Asoh, "Object-centric representation learning with attention
mechanism" (AIST; section 3.1, figure 4; table 1: ViMON 76,107 s, AttnViMON 42,507 s of
training on CLEVRER). Base model: ViMON, M. A. Weis et al., "Benchmarking Unsupervised
Object Representations for Video Sequences", JMLR 2021, arXiv:2006.07034 (reference
implementation ecker-lab/object-centric-representation-benchmark, ``ocrb/vimon``; ours
is :mod:`attnlab.models.object_centric.vimon`). The authors of AttnViMON published no code; what the
seed does not state is listed under "Choices" below.

ViMON carries information forward in time twice: a GRU per slot between the VAE's
encoder and its posterior, and the mask that the VAE decoded for frame t, fed to frame
t's attention (mask) network. Both make frame t wait for frame t - 1. AttnViMON
replaces both by attention masked so that nothing flows backwards in time (seed 3.1):

1. mask network, "one attention per slot, position = time": MONet's stick-breaking
   U-Net on [frame, log scope] (4 input channels: ViMON's predicted-mask channel is
   gone). For slot k the flattened U-Net bottleneck of every frame, projected to
   ``mask_attn_dim`` plus a sine-cosine time embedding, goes through a causal
   multi-head self-attention over that slot's frames; its output (projected back) is
   added to the bottleneck before the U-Net's MLP, so the mask of (t, k) is decoded
   from frame t and from what slot k held at frames t' <= t;
2. component encoder (as ViMON): [frame, log m_{t,k}] -> 32-d feature;
3. latent attention, "one attention over all slots and all time steps, position =
   slot and time": Linear(32 -> ``attn_dim``) + a sine-cosine (time, slot) embedding,
   ``num_layers`` pre-norm transformer blocks on the T * K tokens with
   ``video_block_mask(T, K, causal=True)`` (token (t, k) sees every slot of frames
   t' <= t), LayerNorm, Linear -> mu, logvar (D each); z = mu + exp(logvar / 2) * eps
   (or mu); z_pred = Linear(z) is the next frame's latent (as ViMON);
4. spatial broadcast decoder (as ViMON) on z and z_pred: frames t and t + 1.

The output is :class:`ObjectCentricOutput` (the fields ViMON fills), trained by
:func:`attnlab.objectives.object_centric.vimon_losses` unchanged (seed eq. 2):
``vimon_losses(model(video[:, :-1]), video)``.

Choices where the seed is silent:

* Where the mask network's attention enters the U-Net. ViMON feeds its temporal
  message as an input channel; an input image for slot k would have to be rendered
  from past frames, whereas the bottleneck is the one place where the U-Net holds a
  vector per (t, k), the natural token. The tokens are taken *before* the context is
  added, so they depend on frame t' and the scope of (t', k) only; attending to
  t' <= t (self included) is therefore not circular and leaks nothing: frame t is
  the input at t anyway, and the targets that must stay unseen at t (frame t + 1 for
  ``pred``, the masks of t + 1 for ``next_mask``) belong to later frames, which the
  causal mask hides. Including t also gives frame 0 a key (a strictly-past mask
  would leave its row empty).
* "As many attention mechanisms as slots": read literally, each of the K - 1 U-Net
  calls has its own attention weights (the last slot takes the remaining scope and
  calls no U-Net); the U-Net itself is shared by the slots as in MONet and ViMON.
* No path from the VAE back to the mask network (the seed replaces the propagation
  of masks); the VAE's next-frame masks are still trained against the next frame's
  attention masks by ``L_mask_pred``.
* Attention widths: ``attn_dim`` 128 (ViMON's GRU width) and ``mask_attn_dim`` 128,
  4 heads each, one block (the seed's single attention); each block has the
  transformer's MLP. ViMON's x/5 and x*5 around the GRU are dropped (a LayerNorm
  sets the scale). Position embeddings are fixed sinusoids, so any T works.

Batching and what stays sequential. The mask network no longer reads the VAE, so it
runs first for the whole clip: K - 1 U-Net calls one after another (each scope
depends on the earlier slots: stick-breaking), each on all B * T frames at once,
with one attention call over the T frames of that slot. Then the encoder runs once on
all B * T * K (frame, mask) pairs, the latent attention once on all T * K tokens per
clip, and the decoder once on all 2 * B * T * K latents (on CPU the encoder and
decoder take chunks of 32 themselves, which the caches prefer). Nothing is
sequential over time: causality comes from the masks, not from the order of
computation, so frame t never waits for frame t - 1 (ViMON runs T * (K - 1) U-Net
calls and T GRU steps in sequence; AttnViMON runs K - 1 U-Net calls). What stays
sequential is the slot loop of the mask network.

Deviations (as ViMON's): in eval mode the latent is the posterior mean;
``use_mean=True`` takes the mean in training mode too. The caller slices off the
last frame for training. Outputs are not detached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import ConfigError
from attnlab.layers._recording import RecordsAttention
from attnlab.layers.attention import MultiHeadAttention
from attnlab.layers.component_vae import ComponentEncoder
from attnlab.layers.masks import video_block_mask
from attnlab.layers.pos_embed import sincos_pos_embed
from attnlab.layers.transformer import TransformerBlock
from attnlab.layers.unet_attention import UNet
from attnlab.models._checks import check_video
from attnlab.models._registry import register_model
from attnlab.models.object_centric._slot_vae import (
    check_masks,
    example_video,
    mix_with_attention,
    slot_decoder,
    slot_latent,
)
from attnlab.models.outputs import ObjectCentricModel, ObjectCentricOutput


@dataclass
class AttnViMONConfig:
    num_slots: int = 8
    latent_dim: int = 16
    image_size: int = 64
    attn_channels: int = 32  # the mask network's U-Net
    attn_blocks: int = 5
    attn_mlp_hidden: int = 128
    encoder_channels: tuple[int, ...] = (32, 32, 64, 64)
    encoder_hidden: int = 256
    decoder_channels: int = 32
    decoder_layers: int = 4
    attn_dim: int = 128  # the latent attention over slots x frames
    num_heads: int = 4
    num_layers: int = 1
    mlp_ratio: float = 4.0
    mask_attn_dim: int = 128  # the per-slot attention over frames in the mask network
    mask_num_heads: int = 4
    use_mean: bool = False  # posterior mean instead of a sample in training mode too
    # The reconstruction's mixture weights. "decoder": the softmax over slots of the decoder's
    # mask logits (the reference's). "attention": the attention network's masks, as MONet mixes;
    # the decoder's masks then serve the prediction alone (SFA's masks "attention" counterpart)
    masks: Literal["decoder", "attention"] = "decoder"


def _check_config(c: AttnViMONConfig) -> None:
    check_masks(c.masks)
    for name in ("num_slots", "latent_dim", "num_layers", "num_heads", "mask_num_heads"):
        value = getattr(c, name)
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
    # the (time, slot) sinusoids take half of attn_dim each, as sin/cos pairs
    if c.attn_dim % 4 != 0 or c.attn_dim % c.num_heads != 0:
        raise ConfigError(f"attn_dim={c.attn_dim} must be divisible by 4 and by num_heads={c.num_heads}")
    if c.mask_attn_dim % 2 != 0 or c.mask_attn_dim % c.mask_num_heads != 0:
        raise ConfigError(
            f"mask_attn_dim={c.mask_attn_dim} must be even and divisible by mask_num_heads={c.mask_num_heads}"
        )


def unet_down(unet: UNet, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The encoder half of ``unet``: (N, C_in, S, S) -> flat bottleneck input (N, F) and skips."""
    skips = []
    for i, block in enumerate(unet.down):
        x = block(x)
        skips.append(x)
        if i < len(unet.down) - 1:
            x = F.interpolate(x, scale_factor=0.5, mode="nearest")
    return x.flatten(1), skips  # (N, C * s * s)


def unet_up(unet: UNet, flat: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
    """The rest of ``unet`` (MLP bottleneck, decoder, head): ``unet_up(*unet_down(x)) == unet(x)``."""
    x = unet.bottleneck(flat).view(-1, *unet.bottleneck_shape)  # (N, C, s, s)
    for i, block in enumerate(unet.up):
        x = block(torch.cat([x, skips[-1 - i]], dim=1))  # (N, 2C, h, w)
        if i < len(unet.up) - 1:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
    return unet.head(x)


class SlotTimeAttention(nn.Module):
    """One slot's causal self-attention over frames: bottlenecks (B, T, F) -> context (B, T, F)."""

    def __init__(self, feature_dim: int, *, dim: int, num_heads: int) -> None:
        super().__init__()
        self.dim = dim
        self.embed = nn.Linear(feature_dim, dim)
        self.attn = MultiHeadAttention(dim, num_heads=num_heads, out_dim=feature_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        time = sincos_pos_embed((features.shape[1],), self.dim, dtype=features.dtype, device=features.device)
        return self.attn(self.embed(features) + time, is_causal=True)  # frame t sees frames <= t


class TemporalStickBreaking(RecordsAttention):
    """Mask network: video (B, T, 3, S, S) -> log masks (B, T, K, 1, S, S), summing to one over K.

    Stick-breaking over slots as :class:`attnlab.layers.unet_attention.StickBreakingAttention`;
    the U-Net bottleneck of (t, k) attends to slot k's bottlenecks at frames t' <= t.
    Inside ``capture`` it records the masks (B * T, K, S, S) as StickBreakingAttention does.
    """

    def __init__(self, c: AttnViMONConfig) -> None:
        super().__init__()
        self.num_slots = c.num_slots
        self.unet = UNet(
            4,  # frame RGB and the log scope
            image_size=c.image_size,
            channels=c.attn_channels,
            num_blocks=c.attn_blocks,
            mlp_hidden=c.attn_mlp_hidden,
        )
        feature_dim = math.prod(self.unet.bottleneck_shape)
        self.temporal = nn.ModuleList(
            SlotTimeAttention(feature_dim, dim=c.mask_attn_dim, num_heads=c.mask_num_heads)
            for _ in range(c.num_slots - 1)  # the last slot takes the remaining scope
        )

    def _slot_logits(
        self, frames: torch.Tensor, log_scope: torch.Tensor, temporal: nn.Module
    ) -> torch.Tensor:
        """alpha (B, T, 1, S, S) of one slot for all frames (B, T, 3, S, S) at once."""
        B, T = frames.shape[:2]
        x = torch.cat([frames, log_scope], dim=2).flatten(0, 1)  # (B*T, 4, S, S)
        flat, skips = unet_down(self.unet, x)  # (B*T, F)
        context = temporal(flat.view(B, T, -1)).flatten(0, 1)  # (B, T, F) -> (B*T, F)
        alpha = unet_up(self.unet, flat + context, skips)  # (B*T, 1, S, S)
        return alpha.view(B, T, *alpha.shape[1:])  # (B, T, 1, S, S)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        log_scope = torch.zeros_like(video[:, :, :1])  # (B, T, 1, S, S): log s_1 = 0
        log_masks = []
        for temporal in self.temporal:
            alpha = self._slot_logits(video, log_scope, temporal)
            log_masks.append(log_scope + F.logsigmoid(alpha))
            log_scope = log_scope + F.logsigmoid(-alpha)
        log_masks.append(log_scope)
        out = torch.stack(log_masks, dim=2)  # (B, T, K, 1, S, S)
        return self._record_masks(out) if self._recording else out

    def _record_masks(self, log_masks: torch.Tensor) -> torch.Tensor:
        """Record exp(log masks) (B*T, K, S, S); differentiable capture returns log of them."""
        weights = log_masks.flatten(0, 1).squeeze(2).exp()  # (B*T, K, S, S)
        self._record(weights)
        if not self._recording_differentiable:
            return log_masks
        masks = weights.view(log_masks.shape)  # (B, T, K, 1, S, S), computed from the record
        # where a mask underflows to 0 its log is -inf: keep the log-space value there
        safe = masks.clamp_min(torch.finfo(masks.dtype).tiny)
        return torch.where(masks > 0, safe.log(), log_masks)


class SlotFrameAttention(nn.Module):
    """The one attention over slots x frames, causal in time: features (B, T, K, F) -> (B, T, K, 2D)."""

    def __init__(
        self, feature_dim: int, *, out_dim: int, dim: int, num_heads: int, num_layers: int, mlp_ratio: float
    ) -> None:
        super().__init__()
        self.dim = dim
        self.embed = nn.Linear(feature_dim, dim)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, num_heads=num_heads, mlp_ratio=mlp_ratio) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, out_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        B, T, K, _ = features.shape
        pos = sincos_pos_embed((T, K), self.dim, dtype=features.dtype, device=features.device)  # (T, K, dim)
        x = (self.embed(features) + pos).flatten(1, 2)  # (B, T*K, dim), token t*K + k ("frame_major")
        mask = video_block_mask(T, K, causal=True, same_slot=False, device=features.device)  # (T*K, T*K)
        for block in self.blocks:
            x = block(x, attn_mask=mask)
        return self.head(self.norm(x)).view(B, T, K, -1)  # (B, T, K, out_dim)


@register_model(
    "attn-vimon",
    config=AttnViMONConfig(),
)
class AttnViMON(ObjectCentricModel):
    """Video (B, T, 3, H, W) in [0, 1] -> :class:`ObjectCentricOutput`, every frame at once."""

    objective = "vimon"

    def __init__(self, config: AttnViMONConfig) -> None:
        super().__init__()
        _check_config(config)
        self.config = c = config
        self.attention = TemporalStickBreaking(c)
        feature_dim = 2 * c.latent_dim  # ViMON's encoder output (its GRU input)
        self.encoder = ComponentEncoder(
            out_dim=feature_dim, image_size=c.image_size, channels=c.encoder_channels, hidden=c.encoder_hidden
        )
        self.latent = SlotFrameAttention(
            feature_dim,
            out_dim=2 * c.latent_dim,
            dim=c.attn_dim,
            num_heads=c.num_heads,
            num_layers=c.num_layers,
            mlp_ratio=c.mlp_ratio,
        )
        self.transition = nn.Linear(c.latent_dim, c.latent_dim)
        self.decoder = slot_decoder(c)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        return example_video(self.config, batch_size, frames=2)

    def _encode(self, video: torch.Tensor, attn_log_masks: torch.Tensor) -> torch.Tensor:
        """Encoder features (B, T, K, 2D) of every (frame, mask) pair in one call."""
        B, T, K = attn_log_masks.shape[:3]
        frames = video[:, :, None].expand(-1, -1, K, -1, -1, -1)  # (B, T, K, 3, H, W)
        enc_in = torch.cat([frames, attn_log_masks], dim=3).flatten(0, 2)  # (B*T*K, 4, H, W)
        return self.encoder(enc_in).view(B, T, K, -1)  # (B, T, K, 2D)

    def forward(self, video: torch.Tensor) -> ObjectCentricOutput:
        check_video(video, self.config.image_size)
        attn_log_masks = self.attention(video)  # (B, T, K, 1, H, W)
        mu, logvar = self.latent(self._encode(video, attn_log_masks)).chunk(2, dim=-1)  # (B, T, K, D) each
        z = slot_latent(mu, logvar, self.config, training=self.training)
        z_pred = self.transition(z)
        decoded = self.decoder(torch.stack([z, z_pred]).flatten(0, 3))  # (2*B*T*K, 4, H, W)
        decoded = decoded.view(2, *z.shape[:3], *decoded.shape[1:])  # (2, B, T, K, 4, H, W)
        if self.config.masks == "attention":
            decoded = mix_with_attention(decoded, attn_log_masks)
        latents = torch.stack([mu, logvar, z, z_pred])  # (4, B, T, K, D)
        return ObjectCentricOutput.from_decoded(decoded, latents, attn_log_masks=attn_log_masks)
