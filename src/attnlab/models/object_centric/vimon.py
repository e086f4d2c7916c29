"""ViMON: Video MONet (Weis et al. 2021).

Paper: M. A. Weis et al., "Benchmarking Unsupervised Object Representations for Video
Sequences", JMLR 2021, arXiv:2006.07034 (first titled "Unmasking the Inductive Biases
of Unsupervised Object Representations for Video Sequences"). Reference
implementation: ecker-lab/object-centric-representation-benchmark, ``ocrb/vimon``
(MIT); :func:`attnlab.runs.official.load_official_vimon` loads its published VMDS checkpoint.

Per frame t and slot k (MONet's structure, plus three temporal links):

1. attention: the stick-breaking U-Net (:class:`StickBreakingAttention`) on the frame,
   the log scope and the log-softmax over slots of the mask logits that frame t - 1
   predicted for frame t (zeros at t = 0) -> log m_{t,k};
2. encoder: [frame, log m_{t,k}] -> 32-d feature; a GRU (hidden per slot, weights
   shared by slots) on feature / 5; Linear(hidden * 5) -> mu, logvar (D each);
3. z = mu + exp(logvar / 2) * eps (or mu), z_pred = Linear(z): the next frame's latent;
4. the spatial broadcast decoder maps z and z_pred to RGB means and mask logits of
   frames t and t + 1.

Losses (:func:`attnlab.objectives.object_centric.vimon_losses`): train on
``model(video[:, :-1])`` against ``video``; frame T is only a prediction target.

Batching (the reference loops over slots and calls every network per slot): the
attention U-Net must run slot after slot (each scope depends on the earlier slots)
and the frames one after another (the attention of frame t reads the masks predicted
at t - 1), but for each frame the encoder runs once on all B * K slots, the GRU cell
once on all B * K hidden states, and the decoder once on all 2 * B * K latents (z and
z_pred together). The decoder's first layer avoids tiling z
(:class:`BroadcastDecoder`).

Deviations: in eval mode the latent is the posterior mean (deterministic evaluation,
as the goldens in ``shared/reference/vimon``); the reference also samples at
evaluation time, which ``model.train()`` reproduces (the model has no dropout or
batch norm). ``use_mean=True`` takes the mean in training mode too. The reference's
training mode runs the first T - 1 frames; here the caller slices. Outputs are not
detached.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import nn

from attnlab.layers.component_vae import ComponentEncoder
from attnlab.layers.unet_attention import StickBreakingAttention
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
class ViMONConfig:
    num_slots: int = 8
    latent_dim: int = 16
    gru_dim: int = 128
    image_size: int = 64
    attn_channels: int = 32
    attn_blocks: int = 5
    attn_mlp_hidden: int = 128
    encoder_channels: tuple[int, ...] = (32, 32, 64, 64)
    encoder_hidden: int = 256
    decoder_channels: int = 32
    decoder_layers: int = 4
    gru_scale: float = 5.0  # the GRU sees feature / scale and its output is multiplied back
    use_mean: bool = False  # posterior mean instead of a sample in training mode too
    # The reconstruction's mixture weights. "decoder": the softmax over slots of the decoder's
    # mask logits (the reference's). "attention": the attention network's masks, as MONet mixes;
    # the decoder's masks then serve the prediction alone (SFA's masks "attention" counterpart)
    masks: Literal["decoder", "attention"] = "decoder"


class _Frame(NamedTuple):
    """What one recurrent step hands on: the frame's tensors and the GRU state."""

    attn_log_masks: torch.Tensor  # (B, K, 1, H, W)
    decoded: torch.Tensor  # (2, B, K, 4, H, W): decoder output for z and z_pred
    latents: torch.Tensor  # (4, B, K, D): mu, logvar, z, z_pred
    hidden: torch.Tensor  # (B*K, G)


@register_model(
    "vimon-vmds-official",
    config=ViMONConfig(num_slots=6),
)
@register_model(
    "vimon",
    config=ViMONConfig(),
)
class ViMON(ObjectCentricModel):
    """Video (B, T, 3, H, W) in [0, 1] -> :class:`ObjectCentricOutput` (every field)."""

    objective = "vimon"

    def __init__(self, config: ViMONConfig) -> None:
        super().__init__()
        check_masks(config.masks)
        self.config = c = config
        self.attention = StickBreakingAttention(
            num_slots=c.num_slots,
            extra_chans=1,
            image_size=c.image_size,
            channels=c.attn_channels,
            num_blocks=c.attn_blocks,
            mlp_hidden=c.attn_mlp_hidden,
        )
        feature_dim = 2 * c.latent_dim
        self.encoder = ComponentEncoder(
            out_dim=feature_dim, image_size=c.image_size, channels=c.encoder_channels, hidden=c.encoder_hidden
        )
        self.gru = nn.GRUCell(feature_dim, c.gru_dim)
        self.posterior = nn.Linear(c.gru_dim, 2 * c.latent_dim)
        self.transition = nn.Linear(c.latent_dim, c.latent_dim)
        self.decoder = slot_decoder(c)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        return example_video(self.config, batch_size, frames=2)

    def _step(self, frame: torch.Tensor, prev_log_masks: torch.Tensor, hidden: torch.Tensor) -> _Frame:
        """One frame (B, 3, H, W), all slots at once."""
        c = self.config
        B, K = frame.shape[0], c.num_slots
        attn_log_masks = self.attention(frame, extra=prev_log_masks)  # (B, K, 1, H, W)
        frames = frame[:, None].expand(-1, K, -1, -1, -1)  # (B, K, 3, H, W)
        enc_in = torch.cat([frames, attn_log_masks], dim=2).flatten(0, 1)  # (B*K, 4, H, W)
        hidden = self.gru(self.encoder(enc_in) / c.gru_scale, hidden)  # (B*K, G)
        mu, logvar = self.posterior(hidden * c.gru_scale).chunk(2, dim=-1)  # (B*K, D) each
        z = slot_latent(mu, logvar, self.config, training=self.training)
        z_pred = self.transition(z)
        decoded = self.decoder(torch.cat([z, z_pred]))  # (2*B*K, 4, H, W)
        decoded = decoded.view(2, B, K, *decoded.shape[1:])  # (2, B, K, 4, H, W)
        latents = torch.stack([mu, logvar, z, z_pred]).view(4, B, K, -1)  # (4, B, K, D)
        return _Frame(attn_log_masks=attn_log_masks, decoded=decoded, latents=latents, hidden=hidden)

    def forward(self, video: torch.Tensor) -> ObjectCentricOutput:
        c = self.config
        check_video(video, c.image_size)
        B, T, _, H, W = video.shape
        hidden = video.new_zeros(B * c.num_slots, c.gru_dim)
        prev_log_masks = video.new_zeros(B, c.num_slots, 1, H, W)  # no prediction for frame 0
        steps = []
        for t in range(T):
            step = self._step(video[:, t], prev_log_masks, hidden)
            hidden = step.hidden
            prev_log_masks = step.decoded[1, :, :, 3:].log_softmax(dim=1)  # (B, K, 1, H, W)
            steps.append(step)
        return self._assemble(steps)

    def _assemble(self, steps: list[_Frame]) -> ObjectCentricOutput:
        attn_log_masks = torch.stack([s.attn_log_masks for s in steps], dim=1)  # (B, T, K, 1, H, W)
        decoded = torch.stack([s.decoded for s in steps], dim=2)  # (2, B, T, K, 4, H, W)
        if self.config.masks == "attention":
            decoded = mix_with_attention(decoded, attn_log_masks)
        latents = torch.stack([s.latents for s in steps], dim=2)  # (4, B, T, K, D)
        return ObjectCentricOutput.from_decoded(decoded, latents, attn_log_masks=attn_log_masks)


# The reference's parameter names -> ours: (regex, replacement) rules, applied in order by
# attnlab.runs.convert; attnlab.runs.official.load_official_vimon loads the checkpoint.
OFFICIAL_KEYS: list[tuple[str, str | Callable[[re.Match[str]], str]]] = [
    (r"^attn_module\.encoder\.blocks\.(\d+)\.conv\.", r"attention.unet.down.\1.conv."),
    (r"^attn_module\.decoder\.blocks\.(\d+)\.conv\.", r"attention.unet.up.\1.conv."),
    (r"^attn_module\.decoder\.conv\.", "attention.unet.head."),
    (r"^attn_module\.mlp\.(\d+)\.", lambda m: f"attention.unet.bottleneck.{int(m[1]) - 1}."),  # no Flatten
    (r"^gru\.(weight|bias)_(ih|hh)_l0$", r"gru.\1_\2"),  # nn.GRU -> nn.GRUCell
    (r"^mlp\.", "posterior."),
    (r"^linear\.", "transition."),
    (r"^vae_encoder\.f\.([0246])\.", r"encoder.convs.\1."),
    (r"^vae_encoder\.f\.(9|11)\.", lambda m: f"encoder.mlp.{int(m[1]) - 9}."),  # no Resize
    (r"^vae_decoder\.g\.([0246])\.", r"decoder.convs.\1."),
    (r"^vae_decoder\.g\.8\.", "decoder.head."),
]
