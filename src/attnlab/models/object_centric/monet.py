"""MONet: Multi-Object Network (Burgess et al. 2019).

Paper: C. P. Burgess et al., "MONet: Unsupervised Scene Decomposition and
Representation", arXiv:1901.11390. DeepMind published no code; the layout follows the
paper's appendix B.2 and the MONet networks that ViMON's reference implementation
(ecker-lab/object-centric-representation-benchmark, ``ocrb/vimon``) extends, so that
MONet and ViMON share every layer.

Per image and slot k: the stick-breaking U-Net gives log m_k
(:class:`StickBreakingAttention`, input: image and log scope); the component encoder
reads [image, log m_k] and gives mu, logvar (D each); z = mu + exp(logvar / 2) * eps
(or mu); the spatial broadcast decoder gives RGB means and a mask logit. Loss
(:func:`attnlab.objectives.object_centric.monet_losses`): mixture likelihood with the
attention masks as weights, beta * KL, gamma * KL(attention masks || softmax of the
decoder's mask logits).

Batching: frames are independent, so a video (B, T, 3, H, W) is one batch of B * T
images. The U-Net runs K - 1 times (each scope depends on the earlier slots), each call
on all B * T images; the encoder and decoder each run once on all B * T * K slots.

Deviations and choices: the encoder's second half is read as the log-variance, as in
ViMON's code (any log-scale parameterisation gives the same family of Gaussians). In
eval mode the latent is the posterior mean; ``use_mean=True`` takes the mean in
training mode too. The ``monet`` preset is the paper's Objects Room setting (K = 7,
64x64); the loss weights (beta = gamma = 0.5 by default) live in ``monet_losses``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from attnlab.layers.component_vae import ComponentEncoder
from attnlab.layers.unet_attention import StickBreakingAttention
from attnlab.models._checks import check_video
from attnlab.models._registry import register_model
from attnlab.models.object_centric._slot_vae import example_video, slot_decoder, slot_latent
from attnlab.models.outputs import ObjectCentricModel, ObjectCentricOutput


@dataclass
class MONetConfig:
    num_slots: int = 7
    latent_dim: int = 16
    image_size: int = 64
    attn_channels: int = 32
    attn_blocks: int = 5
    attn_mlp_hidden: int = 128
    encoder_channels: tuple[int, ...] = (32, 32, 64, 64)
    encoder_hidden: int = 256
    decoder_channels: int = 32
    decoder_layers: int = 4
    use_mean: bool = False  # posterior mean instead of a sample in training mode too


@register_model(
    "monet",
    config=MONetConfig(),
)
class MONet(ObjectCentricModel):
    """Video or image sequence (B, T, 3, H, W) in [0, 1] -> :class:`ObjectCentricOutput`
    (no next-frame fields: each frame is decomposed on its own)."""

    objective = "monet"

    def __init__(self, config: MONetConfig) -> None:
        super().__init__()
        self.config = c = config
        self.attention = StickBreakingAttention(
            num_slots=c.num_slots,
            image_size=c.image_size,
            channels=c.attn_channels,
            num_blocks=c.attn_blocks,
            mlp_hidden=c.attn_mlp_hidden,
        )
        self.encoder = ComponentEncoder(
            out_dim=2 * c.latent_dim,
            image_size=c.image_size,
            channels=c.encoder_channels,
            hidden=c.encoder_hidden,
        )
        self.decoder = slot_decoder(c)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        return example_video(self.config, batch_size, frames=1)

    def forward(self, video: torch.Tensor) -> ObjectCentricOutput:
        c = self.config
        check_video(video, c.image_size)
        B, T, _, H, W = video.shape
        K = c.num_slots
        frames = video.flatten(0, 1)  # (B*T, 3, H, W)
        attn_log_masks = self.attention(frames)  # (B*T, K, 1, H, W)
        enc_in = torch.cat(
            [frames[:, None].expand(-1, K, -1, -1, -1), attn_log_masks], dim=2
        )  # (B*T, K, 4, H, W)
        mu, logvar = self.encoder(enc_in.flatten(0, 1)).chunk(2, dim=-1)  # (B*T*K, D) each
        z = slot_latent(mu, logvar, c, training=self.training)
        decoded = self.decoder(z).view(B, T, K, 4, H, W)  # (B, T, K, 4, H, W)
        rgb, mask_logits = decoded.split([3, 1], dim=3)  # not indexing: see outputs.split_decoded
        attn_log_masks = attn_log_masks.view(B, T, K, 1, H, W)
        masks, attn_masks = mask_logits.softmax(dim=2), attn_log_masks.exp()
        return ObjectCentricOutput(
            masks=masks,
            recon=(masks * rgb).sum(dim=2),
            rgb=rgb,
            mask_logits=mask_logits,
            mu=mu.view(B, T, K, -1),  # (B, T, K, D)
            logvar=logvar.view(B, T, K, -1),
            z=z.view(B, T, K, -1),
            attn_masks=attn_masks,
            attn_log_masks=attn_log_masks,
            recon_attn=(attn_masks * rgb).sum(dim=2),  # the model's mixture mean (MONet's likelihood)
        )
