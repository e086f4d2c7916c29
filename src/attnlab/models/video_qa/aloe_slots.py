"""Aloe on an object-centric encoder's slots, trained end to end: the ``aloe-slots`` model.

Aloe (Ding et al., NeurIPS 2021, arXiv:2012.08508) reads frozen MONet latents. The
usual route here is the same: an object-centric run's latents are extracted once
(:mod:`attnlab.data.clevrer_qa`, ``data.encoder: <run folder>``) and Aloe is trained
on them. :class:`AloeSlots` is the end-to-end variant: it holds the encoder (any
:class:`~attnlab.models.outputs.ObjectCentricModel`: ViMON, AttnViMON, SFA or MONet)
and Aloe, takes raw video, and the question loss trains the encoder too (gradients flow
through the posterior means and the decoded masks) unless it is frozen.

Per frame and slot the object token is the posterior mean ``mu`` (D) with the slot's
decoded-mask centroid and area appended (:func:`attnlab.models.video_qa.aloe.append_mask_summary`),
D + 3 numbers: the same tokens as the extracted latents, so weights carry over. ``slot_pixels``
(as ``data.slot_pixels``) puts 8 numbers of what the frame shows under the slot's mask between
them (:func:`attnlab.models.video_qa.mask_pixels.mask_pixels`; not in the paper, whose MONet
latents were trained on full RGB).

``config.encoder`` is a :class:`~attnlab.models._submodel.SubModel` the engine builds and
passes in: ``init_from`` a finished object-centric run folder (its config.yaml gives the
architecture, its model.safetensors the starting weights), or a preset ``name`` alone (a
fresh encoder: the no-pretraining ablation); ``frozen: true`` keeps it fixed (no
gradients, eval mode). With raw frames::

    attnlab run aloe-sfa-clevrer_lite --model.name aloe-slots --model.encoder RUN --data.encoder frames
    attnlab run aloe-sfa-clevrer_lite --model.name aloe-slots --model.encoder.init_from RUN \
        --model.encoder.frozen true --data.encoder frames

``config.aloe_init`` fine-tunes instead of starting Aloe afresh: a finished ``aloe`` run
trained on ``RUN``'s extracted latents (its tokens are the ones this model makes, its
sizes this config's) gives Aloe's starting weights, so encoder and Aloe continue together
from the frozen pipeline. An aloe run trained with ``standardize`` brings its token scale
along (``--model.standardize true`` here too); aloe-slots cannot fit one itself.

Deviations: the encoder runs in training mode in training unless frozen (sampled latents
for its masks; the tokens use the mean either way), and it gets no loss of its own (no
reconstruction term keeps it an auto-encoder while Aloe trains it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.models._registry import register_model
from attnlab.models._submodel import SubModel, as_submodel, built_or_preset, freeze
from attnlab.models.outputs import ObjectCentricModel, ObjectCentricOutput
from attnlab.models.video_qa.aloe import (
    Aloe,
    AloeConfig,
    AloeModel,
    AloeOutput,
    aloe_fields,
    append_mask_summary,
    video_example_inputs,
)
from attnlab.models.video_qa.mask_pixels import PIXEL_DIM, mask_pixels
from attnlab.state_dicts import load_state

SUMMARY_DIM = 3  # mask centroid x, y and area


# ---------------------------------------------------------------- encoders


def object_latents(
    encoder: ObjectCentricModel, video: torch.Tensor, *, pixels: bool = False
) -> tuple[torch.Tensor, ObjectCentricOutput]:
    """Object tokens (B, T, K, D [+ 8] + 3) of ``video`` (B, T, 3, S, S) and the encoder's full output.

    With ``pixels``, :func:`~attnlab.models.video_qa.mask_pixels.mask_pixels` of each slot's mask
    (what the frame shows under it) sits between the latent and the mask summary."""
    out = encoder(video)
    objects = out.mu
    if pixels:
        frames = video[:, : out.masks.shape[1]].to(out.masks.dtype)  # (B, T, 3, S, S) the frames decoded
        objects = torch.cat([objects, mask_pixels(frames, out.masks).to(objects.dtype)], dim=-1)
    return append_mask_summary(objects, out.masks), out


def token_dim(encoder_config: Any, *, pixels: bool = False) -> int:
    """D [+ 8] + 3: the size of :func:`object_latents`' tokens for an encoder of this config."""
    return int(encoder_config.latent_dim) + (PIXEL_DIM if pixels else 0) + SUMMARY_DIM


def repeated_clips(video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``video`` (B, ...) without runs of identical consecutive clips, and the (B,) index that
    restores it. An evaluation batch holds a video's questions one after another, so the
    encoder, which costs far more than Aloe, runs once per video instead of once per question."""
    same = (video[1:] == video[:-1]).flatten(1).all(1)  # (B - 1,) clip b + 1 repeats clip b
    starts = torch.cat([same.new_ones(min(1, video.shape[0])), ~same])  # (B,) a new clip begins here
    return video[starts], starts.cumsum(0) - 1


# ---------------------------------------------------------------- model


@dataclass
class AloeSlotsConfig(AloeConfig):
    """Aloe's sizes plus the encoder; ``object_dim`` must be the encoder's latent_dim + 3 (+ 8 with
    ``slot_pixels``: :func:`object_latents`' tokens).

    ``encoder``: the object-centric model (a finished run folder as ``init_from``, or a preset
    ``name`` for a fresh encoder); ``aloe_init``: a finished ``aloe`` run whose weights start
    Aloe (its sizes must be this config's). Both are built by the engine (:class:`SubModel`);
    a string is read as :func:`as_submodel` says (a run folder, or a preset name).
    """

    object_dim: int = 16 + SUMMARY_DIM
    encoder: SubModel | str = field(default_factory=lambda: SubModel(name="sfa"))
    aloe_init: SubModel | str | None = None
    slot_pixels: bool = False

    def __post_init__(self) -> None:
        self.encoder = as_submodel(self.encoder, "model.encoder")
        if self.aloe_init is not None:
            self.aloe_init = as_submodel(self.aloe_init, "model.aloe_init")


@dataclass
class AloeSlotsOutput(AloeOutput):
    """Aloe's output plus the encoder's own reconstruction and next-frame prediction (None if it has none)."""

    encoder_recon: torch.Tensor | None = None  # (B, T, 3, H, W)
    encoder_pred: torch.Tensor | None = None  # (B, T, 3, H, W)


@register_model(
    "aloe-slots",
    config=AloeSlotsConfig(),
)
class AloeSlots(AloeModel):
    """video (B, T, 3, S, S), question (B, L) [, choices (B, C, Lc)] -> :class:`AloeSlotsOutput`."""

    input_kind = "video"

    @property
    def aloe_core(self) -> Aloe:
        return self.aloe

    def __init__(
        self,
        config: AloeSlotsConfig,
        *,
        encoder: nn.Module | None = None,
        aloe_init: nn.Module | None = None,
    ) -> None:
        """``encoder``, ``aloe_init``: the modules the engine built for the config's SubModels."""
        super().__init__()
        self.config = config
        encoder_spec = as_submodel(config.encoder, "model.encoder")
        self.encoder = built_or_preset(encoder, encoder_spec, "model.encoder")
        if not isinstance(self.encoder, ObjectCentricModel):
            raise ConfigError(
                f"model.encoder is {type(self.encoder).__name__}, not an object-centric model "
                "(MONet, ViMON, AttnViMON, SFA)"
            )
        if encoder_spec.frozen:
            freeze(self.encoder)  # the engine froze it already; a module passed by hand too
        dim = token_dim(self.encoder.config, pixels=config.slot_pixels)
        if config.object_dim != dim:
            parts = "latent_dim + 8 + 3" if config.slot_pixels else "latent_dim + 3"
            raise ConfigError(
                f"model.object_dim must be {dim} for this encoder ({parts}), got {config.object_dim}"
            )
        self.aloe = Aloe(aloe_fields(config))
        if config.aloe_init is None and config.standardize:
            raise ConfigError(
                "model.standardize: aloe-slots takes the token scale from model.aloe_init "
                "(an aloe run trained with --model.standardize true)"
            )
        if config.aloe_init is not None:
            aloe_spec = as_submodel(config.aloe_init, "model.aloe_init")
            source = built_or_preset(aloe_init, aloe_spec, "model.aloe_init")
            trained = source.aloe_core.config.standardize if isinstance(source, AloeModel) else None
            if trained is not None and trained != config.standardize:
                raise ConfigError(
                    f"model.aloe_init was trained with standardize {str(trained).lower()}: "
                    f"set --model.standardize {str(trained).lower()}"
                )
            load_state(self.aloe, source.state_dict(), "model.aloe_init (an aloe run's weights)")
            if aloe_spec.frozen:
                freeze(self.aloe)

    @property
    def image_size(self) -> int:
        return int(self.encoder.config.image_size)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        return video_example_inputs(self.aloe, batch_size, self.image_size)

    def forward(
        self,
        video: torch.Tensor,
        question: torch.Tensor,
        *,
        choices: torch.Tensor | None = None,
        object_mask: torch.Tensor | None = None,
        mask_ratio: float | None = None,
        generator: torch.Generator | None = None,
    ) -> AloeSlotsOutput:
        unique, inverse = repeated_clips(video)  # (U, T, 3, S, S), (B,)
        objects, enc = object_latents(self.encoder, unique, pixels=self.config.slot_pixels)  # (U, T, K, D')
        out = self.aloe(
            objects[inverse],  # (B, T, K, D')
            question,
            choices=choices,
            object_mask=object_mask,
            mask_ratio=mask_ratio,
            generator=generator,
        )
        return AloeSlotsOutput(
            **{f.name: getattr(out, f.name) for f in dataclasses.fields(AloeOutput)},
            encoder_recon=enc.recon[inverse],
            encoder_pred=None if enc.pred is None else enc.pred[inverse],
        )
