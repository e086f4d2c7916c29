"""Aloe on an object-centric encoder's slots, trained end to end: the ``aloe-slots`` model.

Aloe (Ding et al., NeurIPS 2021, arXiv:2012.08508) reads frozen MONet latents. The
usual route here is the same: an object-centric run's latents are extracted once
(:mod:`attnlab.data.clevrer_qa`, ``data.encoder: <run folder>``) and Aloe is trained
on them. :class:`AloeSlots` is the end-to-end variant: it holds the encoder (ViMON,
AttnViMON, SFA or MONet) and Aloe, takes raw video, and the question loss trains the
encoder too (gradients flow through the posterior means and the decoded masks).

Per frame and slot the object token is the posterior mean ``mu`` (D) with the slot's
decoded-mask centroid and area appended (:func:`attnlab.models.video_qa.aloe.append_mask_summary`),
D + 3 numbers: the same tokens as the extracted latents, so weights carry over.

``config.encoder`` is a finished object-centric run folder (its config.yaml gives the
architecture, its model.safetensors the starting weights) or a registered encoder
preset name (a fresh encoder: the no-pretraining ablation). Use it with raw frames::

    attnlab run aloe-sfa-clevrer_lite --model.name aloe-slots --model.encoder RUN --data.encoder frames

``config.aloe_init`` fine-tunes instead of starting Aloe afresh: a finished ``aloe`` run
trained on ``RUN``'s extracted latents gives Aloe's starting weights (its tokens are the
ones this model makes), so encoder and Aloe continue together from the frozen pipeline.

Deviations: the encoder runs in training mode in training (sampled latents for its
masks; the tokens use the mean either way), and it gets no loss of its own (no
reconstruction term keeps it an auto-encoder while Aloe trains it).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.models._registry import MODELS, register_model
from attnlab.models.outputs import ObjectCentricModel, ObjectCentricOutput
from attnlab.models.video_qa.aloe import (
    Aloe,
    AloeConfig,
    AloeOutput,
    aloe_fields,
    append_mask_summary,
    video_example_inputs,
)

SUMMARY_DIM = 3  # mask centroid x, y and area


# ---------------------------------------------------------------- encoders


def object_latents(
    encoder: ObjectCentricModel, video: torch.Tensor
) -> tuple[torch.Tensor, ObjectCentricOutput]:
    """Object tokens (B, T, K, D + 3) of ``video`` (B, T, 3, S, S) and the encoder's full output."""
    out = encoder(video)
    return append_mask_summary(out.mu, out.masks), out


def token_dim(encoder_config: Any) -> int:
    """D + 3: the size of :func:`object_latents`' tokens for an encoder of this config."""
    return int(encoder_config.latent_dim) + SUMMARY_DIM


def weights_digest(run_dir: str | Path) -> str:
    """A short hash of a run's final weights: cached latents are keyed by it."""
    path = Path(run_dir) / "model.safetensors"
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()[:16]


def check_run_folder(run_dir: str | Path, what: str) -> Path:
    """A finished run folder, or a one-line InputError."""
    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise InputError(f"{what}: no run folder at {path}")
    if not (path / "config.yaml").is_file() or not (path / "model.safetensors").is_file():
        raise InputError(
            f"{what}: {path} is not a finished run folder (it needs config.yaml and model.safetensors)"
        )
    return path


def load_object_encoder(run_dir: str | Path, *, what: str = "encoder") -> nn.Module:
    """The object-centric model of a finished run, built from its config.yaml with its final weights."""
    from attnlab.runs.spec import resolve
    from attnlab.train.model_options import load_initial_weights  # train imports models: import late

    path = check_run_folder(run_dir, what)
    spec = resolve(path / "config.yaml", [])
    model = MODELS.get(spec.model_name).cls(spec.model_config)
    if not isinstance(model, ObjectCentricModel):
        raise InputError(
            f"{what}: {path} trained {type(model).__name__}; an object-centric encoder "
            "(MONet, ViMON, AttnViMON, SFA) is needed"
        )
    load_initial_weights(model, path, what)
    return model


def build_encoder(source: str) -> nn.Module:
    """A run folder's trained encoder, or a fresh one from a registered preset name."""
    if not Path(source).expanduser().is_dir() and source in MODELS.names():
        model = MODELS.get(source).cls(MODELS.get(source).config)
        if not isinstance(model, ObjectCentricModel):
            raise ConfigError(
                f"model.encoder '{source}' is {type(model).__name__}, not an object-centric encoder"
            )
        return model
    if not source:
        raise ConfigError(
            "model.encoder is empty: give an object-centric run folder or an encoder preset name"
        )
    return load_object_encoder(source, what="model.encoder")


def load_aloe_run(aloe: Aloe, run_dir: str) -> None:
    """An ``aloe`` run's final weights into ``aloe`` (same sizes), or a one-line InputError."""
    from attnlab.train.model_options import load_initial_weights  # train imports models: import late

    load_initial_weights(aloe, check_run_folder(run_dir, "model.aloe_init"), "model.aloe_init")


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
    """Aloe's sizes plus the encoder; ``object_dim`` must be the encoder's latent_dim + 3."""

    object_dim: int = 16 + SUMMARY_DIM
    encoder: str = "sfa"  # a finished object-centric run folder or an encoder preset name
    aloe_init: str | None = None  # a finished aloe run on the encoder's latents: Aloe's starting weights


@dataclass
class AloeSlotsOutput(AloeOutput):
    """Aloe's output plus the encoder's own reconstruction and next-frame prediction (None if it has none)."""

    encoder_recon: torch.Tensor | None = None  # (B, T, 3, H, W)
    encoder_pred: torch.Tensor | None = None  # (B, T, 3, H, W)


@register_model(
    "aloe-slots",
    config=AloeSlotsConfig(),
)
class AloeSlots(nn.Module):
    """video (B, T, 3, S, S), question (B, L) [, choices (B, C, Lc)] -> :class:`AloeSlotsOutput`."""

    input_kind = "video"

    def __init__(self, config: AloeSlotsConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = build_encoder(config.encoder)
        dim = token_dim(self.encoder.config)
        if config.object_dim != dim:
            raise ConfigError(
                f"model.object_dim must be {dim} for this encoder (latent_dim + 3), got {config.object_dim}"
            )
        self.aloe = Aloe(aloe_fields(config))
        if config.aloe_init is not None:
            load_aloe_run(self.aloe, config.aloe_init)

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
        objects, enc = object_latents(self.encoder, unique)  # (U, T, K, D + 3)
        out = self.aloe(
            objects[inverse],  # (B, T, K, D + 3)
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
