"""SFA: Slots and Frames Attention (Nakada & Asoh 2023).

Paper: H. Nakada and H. Asoh, "Object-Centric Representation Learning with Attention
Mechanism" (seed 000 of this project, section 3.2, fig. 5, eq. 3). No reference
implementation is published; SFA is built on ViMON (Weis et al., arXiv:2006.07034;
ecker-lab/object-centric-representation-benchmark, ``ocrb/vimon``), whose spatial
broadcast decoder and mixture likelihood it shares (``shared/reference/vimon``).

SFA drops ViMON's mask network and GRU. For every frame t and slot k, all in parallel:

1. a CNN encodes each frame x_t (all B * T frames as one batch) into feature tokens
   with fixed 2D sine-cosine positions;
2. the Object Extractor (:class:`attnlab.layers.slot_attention.QueryObjectExtractor`):
   K learned queries Q_k, the same at every frame, cross-attend to the frame's
   tokens -> one vector per (t, k);
3. one attention stage over all slots x frames, with slot and time positions, causal
   in time (token (t, k) sees every slot of frames t' <= t,
   :func:`attnlab.layers.masks.video_block_mask`);
4. per token a VAE head: mu, logvar; z = mu + exp(logvar / 2) * eps (or mu);
   z_pred = Linear(z) is the latent of frame t + 1;
5. ViMON's spatial broadcast decoder maps z and z_pred to RGB means and a mask logit;
   the masks are the softmax over slots of the logits (no separate mask network).

Loss (:func:`attnlab.objectives.sfa.sfa_losses`, eq. 3): sum over frames of
L_recon + L_pred + beta * L_prior; train on ``model(video[:, :-1])`` against ``video``.

Choices where the seed is silent (all in :class:`SFAConfig`):

* Encoder: ViMON's component-encoder widths (32, 32, 64, 64), 3x3 convs with ReLU,
  strides (1, 2, 1, 2) so a 64x64 frame gives a 16x16 map (256 tokens; ViMON's
  all-stride-2 encoder would leave 16 tokens for 8 slots to share); a linear map to
  ``dim`` and the 2D sine-cosine positions of :mod:`attnlab.layers.pos_embed`.
* Width ``dim`` = 128 (ViMON's GRU width, the state the attention replaces), 4 heads.
  The Extractor is one pre-norm cross-attention block (the seed: "a multi-head
  attention network"); the slot-frame stage is one pre-norm transformer block (the
  seed describes one attention mechanism), then a LayerNorm; ``depth`` and
  ``extractor_layers`` add more.
* Positions of the slot-frame stage: a learned embedding per slot (K, dim) and the
  fixed 1D sine-cosine embedding of the frame index, both added to the Extractor's
  output, so any number of frames works.
* Prediction latent: ``z_pred = Linear(z)`` as ViMON's, because the seed predicts
  x_{t+1} "from the VAE output" as ViMON does. z_t depends only on frames <= t (the
  Extractor is per frame, the attention causal), so the prediction does too.
* Loss weights (``sfa_losses``): beta = 1 and sigmas (0.09, 0.11), as ViMON.

Options beyond the seed, all off by default (docs/object_centric.md, "what makes slots separate
on a CPU"): the slot-attention extractor (``extractor``, ``slot_bilevel``, ``carry_slots``,
``slot_init``), the reconstruction mixed by its attention (``masks="attention"``), Slot
Attention's encoder head (``encoder_positions="soft"``) and ``detach_prediction``.

Deviations: in eval mode the latent is the posterior mean (deterministic evaluation);
``use_mean=True`` takes the mean in training mode too. Every slot and frame is
computed in parallel: one encoder call on B * T frames, one Extractor call, one
attention call per block on (B, T * K) tokens, one decoder call on 2 * B * T * K latents.

Attention capture (:func:`attnlab.explain.capture`): ``extractor.blocks.{i}.attn``
records (B * T, H, K, N) (index b * T + t), ``transformer.{i}.attn`` records
(B, H, T * K, T * K) over frame-major tokens t * K + k, zero on future frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import ConfigError
from attnlab.layers.masks import video_block_mask
from attnlab.layers.pos_embed import (
    SinusoidalPositionEmbedding,
    SoftPositionEmbedding,
    sincos_pos_embed_1d,
)
from attnlab.layers.slot_attention import QueryObjectExtractor, VideoSlotAttention
from attnlab.layers.transformer import TransformerBlock
from attnlab.models._checks import check_video
from attnlab.models._registry import register_model
from attnlab.models.object_centric._slot_vae import (
    check_masks,
    example_video,
    mix_with_attention,
    slot_decoder,
    slot_latent,
)
from attnlab.models.object_centric.colour import chromaticity
from attnlab.models.object_centric.frame_clusters import frame_clusters
from attnlab.models.object_centric.gaussian_masks import gaussian_log_masks
from attnlab.models.outputs import ObjectCentricModel, ObjectCentricOutput


@dataclass
class SFAConfig:
    num_slots: int = 8
    latent_dim: int = 16
    image_size: int = 64
    encoder_channels: tuple[int, ...] = (32, 32, 64, 64)
    encoder_strides: tuple[int, ...] = (1, 2, 1, 2)
    encoder_kernel: int = 3
    # "sincos": a linear map to dim, then the fixed 2D sine-cosine positions (our default where
    # the seed is silent). "soft": Slot Attention's encoder head (Locatello et al. 2020): a
    # learned linear map of the (y, x, 1-y, 1-x) grid added to the features, then LayerNorm and a
    # 2-layer MLP to dim (docs/object_centric.md, a3: about equal to "sincos" alone; part of
    # the small recipe that separates)
    encoder_positions: Literal["sincos", "soft"] = "sincos"
    # "rgb": the frame (the seed's). "rgb_chroma": the frame and its chromaticity rgb / (r + g + b),
    # which a surface's lit and shaded sides share (shading scales all three channels alike):
    # for scenes lit from one side, whose objects a per-pixel encoder cuts into lit and shaded
    # parts (docs/video_reasoning.md, issue 16 part 3)
    encoder_input: Literal["rgb", "rgb_chroma"] = "rgb"
    dim: int = 128  # width of the slot vectors (divisible by 4 and by num_heads)
    num_heads: int = 4
    extractor_layers: int = 1  # cross-attention blocks of the Object Extractor
    depth: int = 1  # transformer blocks over slots x frames
    mlp_ratio: float = 4.0
    attn_drop: float = 0.0
    proj_drop: float = 0.0
    decoder_channels: int = 32
    decoder_layers: int = 4
    use_mean: bool = False  # posterior mean instead of a sample in training mode too
    # The Object Extractor. "cross_attention" is the seed's (K learned queries, softmax over
    # tokens); "slot_attention" makes the slots compete for tokens (softmax over slots,
    # ``slot_iterations`` GRU updates; :class:`attnlab.layers.slot_attention.VideoSlotAttention`),
    # which is what separated objects on a CPU (docs/object_centric.md).
    extractor: Literal["cross_attention", "slot_attention"] = "cross_attention"
    slot_iterations: int = 3
    # slot_attention only: frame t starts from frame t-1's slots (SAVi) instead of the
    # initial slots (slot_init), so an object keeps its slot; a loop over frames
    carry_slots: bool = False
    # slot_attention only: "learned" K vectors, the same on every clip, or "gaussian": Slot
    # Attention's draw from a learned Gaussian, one per clip (docs/object_centric.md, probes), or
    # "kmeans": each frame's slots start from a k-means of its own pixels (their ``kmeans_colour``
    # and ``kmeans_position_weight`` times their (y, x), at the token grid), slot k from cluster
    # k's tokens (ours, not the seed's; not with carry_slots; on CLEVRER-lite training regroups
    # them by colour, as from learned slots: docs/video_reasoning.md)
    slot_init: Literal["learned", "gaussian", "kmeans"] = "learned"
    kmeans_colour: Literal["rgb", "chromaticity"] = "chromaticity"
    kmeans_position_weight: float = 1.0
    # slot_attention only: BO-QSA's gradient (only the last iteration's, passed straight
    # through to the initial slots): with it and carry_slots off, SFA's slots split the sprites
    # on all 3 seeds measured (docs/object_centric.md, b4)
    slot_bilevel: bool = False
    # slot_attention only: > 0 adds -weight * ||p - c_k||^2 to the attention logits, c_k the
    # slot's attention-weighted centre in the frame ((y, x) in [0, 1]), so that two objects that
    # look alike but lie apart lean to different slots (ours, not the seed's; 0 = off;
    # docs/video_reasoning.md)
    slot_position_weight: float = 0.0
    # The mixture weights of the reconstruction. "decoder": the softmax over slots of the
    # decoder's mask logits (the seed's). "attention" (slot_attention only): the Extractor's last
    # attention over slots, resized to the frame, as MONet mixes with its attention network's
    # masks; the decoder's masks then serve the prediction alone. With the mixture likelihood
    # this is what made slots hold whole sprites on a CPU (docs/object_centric.md, a1)
    # "gaussian" (slot_attention only; ours): one Gaussian blob per slot in (y, x), the attention-
    # weighted mean and variance of the token cells, so that a slot over two objects apart also
    # covers the floor between them (models/object_centric/gaussian_masks.py; on CLEVRER-lite the
    # slots stay at one: docs/video_reasoning.md)
    masks: Literal["decoder", "attention", "gaussian"] = "decoder"
    # masks "gaussian": the blobs' moments weight the attention to this power (1 = as it is)
    gaussian_power: float = 1.0
    # The prediction z_pred = Linear(z) from z without its gradient: the prediction loss then
    # trains the transition and the decoder but not the slots (docs/object_centric.md, a7: it
    # does not keep the slots apart under the per-pixel mixture; task.pred_weight 0 does)
    detach_prediction: bool = False
    # 2: the decoder also paints each slot's motion (y, x), which the task's motion target
    # (``task.motion_weight``, SAVi's flow targets) scores beside the colour; 0 = colour alone
    motion_channels: Literal[0, 2] = 0
    # 3: the decoder also paints each slot's RGB beside the chromaticity, which the task's
    # appearance term (``task.appearance_weight``) scores, so that the slot latents keep the
    # shading and highlights that tell shape and material; 0 = the colour alone
    appearance_channels: Literal[0, 3] = 0


class FrameEncoder(nn.Module):
    """Frames (N, 3, S, S) -> tokens (N, h * w, dim) in row-major order, positions added."""

    def __init__(self, config: SFAConfig) -> None:
        super().__init__()
        c = config
        if len(c.encoder_channels) != len(c.encoder_strides) or not c.encoder_channels:
            raise ConfigError(
                f"encoder_channels {c.encoder_channels} and encoder_strides {c.encoder_strides} "
                "must be non-empty and of the same length"
            )
        if c.encoder_input not in ("rgb", "rgb_chroma"):
            raise ConfigError(f"encoder_input must be 'rgb' or 'rgb_chroma', got {c.encoder_input!r}")
        self.chroma = c.encoder_input == "rgb_chroma"
        pad = c.encoder_kernel // 2
        layers: list[nn.Module] = []
        size, chans = c.image_size, 6 if self.chroma else 3
        for width, stride in zip(c.encoder_channels, c.encoder_strides, strict=True):
            layers += [nn.Conv2d(chans, width, c.encoder_kernel, stride, pad), nn.ReLU()]
            size, chans = (size + 2 * pad - c.encoder_kernel) // stride + 1, width
        if size < 1:
            raise ConfigError(f"the encoder shrinks a {c.image_size}-pixel frame to nothing")
        self.grid = (size, size)
        self.convs = nn.Sequential(*layers)
        self.proj: nn.Module
        self.pos_embed: nn.Module
        if c.encoder_positions == "sincos":  # the names of checkpoints written before "soft"
            self.proj = nn.Linear(chans, c.dim)
            self.pos_embed = SinusoidalPositionEmbedding(c.dim, grid=self.grid)
        elif c.encoder_positions == "soft":
            self.pos_embed = SoftPositionEmbedding(chans, grid=self.grid)
            self.proj = nn.Sequential(
                nn.LayerNorm(chans), nn.Linear(chans, c.dim), nn.ReLU(), nn.Linear(c.dim, c.dim)
            )
        else:
            raise ConfigError(f"encoder_positions must be 'sincos' or 'soft', got {c.encoder_positions!r}")
        self.positions = c.encoder_positions

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if self.chroma:
            frames = torch.cat([frames, chromaticity(frames)], dim=1)  # (N, 6, S, S)
        maps = self.convs(frames)  # (N, C, h, w)
        tokens = maps.flatten(2).transpose(1, 2)  # (N, h*w, C), row-major like the position tables
        if self.positions == "soft":
            return self.proj(self.pos_embed(tokens))  # (N, h*w, dim)
        return self.pos_embed(self.proj(tokens))  # (N, h*w, dim)


def _check_kmeans(c: SFAConfig) -> None:
    if c.slot_init not in ("learned", "gaussian", "kmeans"):
        raise ConfigError(f"slot_init must be 'learned', 'gaussian' or 'kmeans', got {c.slot_init!r}")
    if c.kmeans_colour not in ("rgb", "chromaticity"):
        raise ConfigError(f"kmeans_colour must be 'rgb' or 'chromaticity', got {c.kmeans_colour!r}")
    if not math.isfinite(c.kmeans_position_weight) or c.kmeans_position_weight < 0:
        raise ConfigError(f"kmeans_position_weight must be finite and >= 0, got {c.kmeans_position_weight}")
    if c.slot_init == "kmeans" and c.carry_slots:
        raise ConfigError("slot_init 'kmeans' starts every frame from its own clusters: not with carry_slots")


def _extractor(c: SFAConfig, grid: tuple[int, int]) -> nn.Module:
    """The Object Extractor the config names: tokens (B, T, N, dim) -> slots (B, T, K, dim)."""
    if c.masks != "gaussian":
        check_masks(c.masks)
    if not math.isfinite(c.gaussian_power) or c.gaussian_power < 1:
        raise ConfigError(f"gaussian_power must be finite and >= 1, got {c.gaussian_power}")
    _check_kmeans(c)
    if c.extractor == "slot_attention":
        if c.slot_iterations < 1:
            raise ConfigError(f"slot_iterations must be >= 1, got {c.slot_iterations}")
        if not math.isfinite(c.slot_position_weight) or c.slot_position_weight < 0:
            raise ConfigError(f"slot_position_weight must be finite and >= 0, got {c.slot_position_weight}")
        return VideoSlotAttention(
            c.dim,
            num_slots=c.num_slots,
            num_iterations=c.slot_iterations,
            carry=c.carry_slots,
            init=c.slot_init,
            bilevel=c.slot_bilevel,
            position_weight=c.slot_position_weight,
            grid=grid,
        )
    if c.extractor != "cross_attention":
        raise ConfigError(f"extractor must be 'cross_attention' or 'slot_attention', got {c.extractor!r}")
    if c.carry_slots:
        raise ConfigError("carry_slots needs extractor 'slot_attention' (the cross-attention has no state)")
    if c.slot_init != "learned":
        raise ConfigError("slot_init needs extractor 'slot_attention' (cross-attention queries are learned)")
    if c.slot_bilevel or c.slot_position_weight:
        raise ConfigError(
            "slot_bilevel and slot_position_weight need extractor 'slot_attention' "
            "(the cross-attention does not iterate)"
        )
    if c.masks != "decoder":
        raise ConfigError(
            f"masks {c.masks!r} needs extractor 'slot_attention' (the cross-attention's weights are "
            "normalised over tokens, not slots: they are no segmentation)"
        )
    return QueryObjectExtractor(
        c.dim,
        num_slots=c.num_slots,
        num_heads=c.num_heads,
        num_layers=c.extractor_layers,
        mlp_ratio=c.mlp_ratio,
        attn_drop=c.attn_drop,
        proj_drop=c.proj_drop,
    )


@register_model(
    "sfa",
    config=SFAConfig(),
)
class SFA(ObjectCentricModel):
    """Video (B, T, 3, H, W) in [0, 1] -> :class:`ObjectCentricOutput` (no attention-network
    fields; ``slots`` set), every slot and frame at once."""

    objective = "sfa"

    def __init__(self, config: SFAConfig) -> None:
        super().__init__()
        self.config = c = config
        self.encoder = FrameEncoder(c)
        self.extractor = _extractor(c, self.encoder.grid)
        self.slot_embed = nn.Parameter(torch.empty(c.num_slots, c.dim))
        nn.init.trunc_normal_(self.slot_embed, std=0.02)
        self.transformer = nn.ModuleList(
            TransformerBlock(
                c.dim,
                num_heads=c.num_heads,
                mlp_ratio=c.mlp_ratio,
                attn_drop=c.attn_drop,
                proj_drop=c.proj_drop,
            )
            for _ in range(c.depth)
        )
        self.norm = nn.LayerNorm(c.dim)
        self.posterior = nn.Linear(c.dim, 2 * c.latent_dim)
        self.transition = nn.Linear(c.latent_dim, c.latent_dim)
        if c.motion_channels not in (0, 2):
            raise ConfigError(f"motion_channels must be 0 or 2, got {c.motion_channels}")
        if c.appearance_channels not in (0, 3):
            raise ConfigError(f"appearance_channels must be 0 or 3, got {c.appearance_channels}")
        self.decoder = slot_decoder(c, colour_channels=3 + c.appearance_channels + c.motion_channels)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        return example_video(self.config, batch_size, frames=2)

    def extract(self, video: torch.Tensor) -> torch.Tensor:
        """The Object Extractor's slots (B, T, K, dim): each frame on its own."""
        return self.extract_with_masks(video)[0]

    def extract_with_masks(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The Extractor's slots (B, T, K, dim) and, with ``masks="attention"``, its last
        attention over slots as masks (B, T, K, H, W) (else None)."""
        B, T = video.shape[:2]
        tokens = self.encoder(video.flatten(0, 1))  # (B*T, N, dim)
        tokens = tokens.view(B, T, *tokens.shape[1:])  # (B, T, N, dim)
        # masks "attention" and slot_init "kmeans" come with the slot-attention extractor (the config checks)
        if not isinstance(self.extractor, VideoSlotAttention):
            return self.extractor(tokens), None  # (B, T, K, dim)
        c = self.config
        clusters = None
        if c.slot_init == "kmeans":
            clusters = frame_clusters(
                video, self.encoder.grid, c.num_slots, c.kmeans_colour, c.kmeans_position_weight
            )  # (B, T, K, N)
        slots, attention = self.extractor.with_attention(tokens, clusters)  # (B, T, K, dim), (B, T, K, N)
        if c.masks == "decoder":
            return slots, None
        grid = attention.view(B * T, -1, *self.encoder.grid)  # (B*T, K, h, w)
        if c.masks == "gaussian":
            masks = gaussian_log_masks(grid, video.shape[-2:], c.gaussian_power).exp()  # (B*T, K, H, W)
        else:  # bilinear weights sum to 1, so the resized masks still sum to 1 over slots
            masks = F.interpolate(grid, size=video.shape[-2:], mode="bilinear", align_corners=False)
        return slots, masks.view(B, T, *masks.shape[1:])  # (B, T, K, H, W)

    def attend(self, slots: torch.Tensor) -> torch.Tensor:
        """Slots x frames attention, causal in time: (B, T, K, dim) -> (B, T, K, dim)."""
        B, T, K, D = slots.shape
        # the table is tiny; built on the CPU in float64 so every device and dtype works
        time = sincos_pos_embed_1d(T, D).to(slots)  # (T, D)
        x = slots + self.slot_embed + time[:, None]  # (B, T, K, D)
        x = x.reshape(B, T * K, D)  # (B, T*K, D), frame-major: token t*K + k
        mask = video_block_mask(T, K, causal=True, same_slot=False, device=slots.device)  # (T*K, T*K)
        for block in self.transformer:
            x = block(x, attn_mask=mask)
        return self.norm(x).view(B, T, K, D)  # (B, T, K, D)

    def forward(self, video: torch.Tensor) -> ObjectCentricOutput:
        check_video(video, self.config.image_size)
        slots, attention_masks = self.extract_with_masks(video)
        slots = self.attend(slots)  # (B, T, K, dim)
        mu, logvar = self.posterior(slots).chunk(2, dim=-1)  # (B, T, K, D) each
        z = slot_latent(mu, logvar, self.config, training=self.training)
        z_pred = self.transition(z.detach() if self.config.detach_prediction else z)
        latents = torch.stack([z, z_pred])  # (2, B, T, K, D)
        decoded = self.decoder(latents.flatten(0, 3))  # (2*B*T*K, C + 1, H, W)
        decoded = decoded.view(*latents.shape[:4], *decoded.shape[1:])  # (2, B, T, K, C + 1, H, W)
        if attention_masks is not None:
            # the reconstruction's mask logits become log attention: their softmax over slots is
            # the attention itself (it sums to 1); the clamp only keeps log(0) finite
            log_masks = attention_masks.clamp_min(torch.finfo(attention_masks.dtype).tiny).log()
            decoded = mix_with_attention(decoded, log_masks[..., None, :, :])
        latents = torch.stack([mu, logvar, z, z_pred])  # (4, B, T, K, D)
        return ObjectCentricOutput.from_decoded(decoded, latents, slots=slots)
