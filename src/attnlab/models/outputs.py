"""Output dataclasses shared by several model families."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn


@dataclass
class ClassifierOutput:
    logits: torch.Tensor  # (B, num_classes)
    features: torch.Tensor  # (B, D), the representation the head reads


def split_decoded(decoded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decoder output (2, B, T, K, C + 1, H, W) for z and z_pred -> rgb, mask logits, next rgb,
    next mask logits: (B, T, K, C | 1, H, W); C is 3, or more where the decoder also paints what
    a task reconstructs beside the colour (SFA's ``motion_channels``)."""
    # unbind and split, not indexing: each index's backward would write its gradient
    # into a zero-filled copy of the whole decoded tensor (0.4 s of a CPU training step).
    current, following = decoded.unbind(0)  # (B, T, K, C + 1, H, W) each
    parts = [decoded.shape[4] - 1, 1]
    rgb, logits = torch.split(current, parts, dim=3)  # torch.split is typed, Tensor.split is not
    next_rgb, next_logits = torch.split(following, parts, dim=3)
    return rgb, logits, next_rgb, next_logits


@dataclass
class ObjectCentricOutput:
    """What every object-centric video model returns (MONet, ViMON, AttnViMON, SFA), per frame t
    of the input (T frames, K slots). The same name always means the same thing; a field a
    model has no counterpart for is None (MONet predicts no next frame, SFA has no mask network).
    C is 3 (RGB), 5 where SFA paints each slot's motion too (``motion_channels``).
    """

    masks: torch.Tensor  # (B, T, K, 1, H, W) softmax over slots of the decoder's mask logits
    recon: torch.Tensor  # (B, T, C, H, W) sum_k masks * rgb: the reconstruction from the latents
    rgb: torch.Tensor  # (B, T, K, C, H, W) decoded RGB (and motion) means
    mask_logits: torch.Tensor  # (B, T, K, 1, H, W) the decoder's
    mu: torch.Tensor  # (B, T, K, D) posterior means
    logvar: torch.Tensor  # (B, T, K, D)
    z: torch.Tensor  # (B, T, K, D) the latent decoded for frame t
    # next-frame prediction (None for models that do not predict: MONet)
    pred: torch.Tensor | None = None  # (B, T, C, H, W) sum_k next_masks * next_rgb: frame t + 1
    next_masks: torch.Tensor | None = None  # (B, T, K, 1, H, W)
    next_rgb: torch.Tensor | None = None  # (B, T, K, C, H, W)
    next_mask_logits: torch.Tensor | None = None  # (B, T, K, 1, H, W)
    z_pred: torch.Tensor | None = None  # (B, T, K, D) the latent decoded for frame t + 1
    # the attention (mask) network (None without one: SFA)
    attn_masks: torch.Tensor | None = None  # (B, T, K, 1, H, W) exp(attn_log_masks)
    attn_log_masks: torch.Tensor | None = None  # (B, T, K, 1, H, W)
    recon_attn: torch.Tensor | None = None  # (B, T, C, H, W) sum_k attn_masks * rgb
    slots: torch.Tensor | None = None  # (B, T, K, dim) object embeddings before the posterior (SFA)

    @classmethod
    def from_decoded(
        cls,
        decoded: torch.Tensor,
        latents: torch.Tensor,
        *,
        attn_log_masks: torch.Tensor | None = None,
        slots: torch.Tensor | None = None,
    ) -> ObjectCentricOutput:
        """From decoded (2, B, T, K, C + 1, H, W) for z and z_pred, latents (4, B, T, K, D): mu,
        logvar, z, z_pred, and optional attention log masks (B, T, K, 1, H, W)."""
        rgb, logits, next_rgb, next_logits = split_decoded(decoded)
        masks, next_masks = logits.softmax(dim=2), next_logits.softmax(dim=2)
        mu, logvar, z, z_pred = latents.unbind(0)
        attn_masks = None if attn_log_masks is None else attn_log_masks.exp()
        return cls(
            masks=masks,
            recon=(masks * rgb).sum(dim=2),
            rgb=rgb,
            mask_logits=logits,
            mu=mu,
            logvar=logvar,
            z=z,
            pred=(next_masks * next_rgb).sum(dim=2),
            next_masks=next_masks,
            next_rgb=next_rgb,
            next_mask_logits=next_logits,
            z_pred=z_pred,
            attn_masks=attn_masks,
            attn_log_masks=attn_log_masks,
            recon_attn=None if attn_masks is None else (attn_masks * rgb).sum(dim=2),
            slots=slots,
        )

    def first_frames(self, steps: int) -> ObjectCentricOutput:
        """The output restricted to its first ``steps`` frames (every tensor has time at dim 1)."""
        return dataclasses.replace(
            self,
            **{
                f.name: value[:, :steps]
                for f in dataclasses.fields(self)
                if (value := getattr(self, f.name)) is not None
            },
        )


class ObjectCentricModel(nn.Module):
    """The contract of an object-centric video model: ``forward(video)`` (B, T, 3, H, W) in
    [0, 1] -> :class:`ObjectCentricOutput`; ``config`` has ``num_slots``, ``latent_dim`` and
    ``image_size``; ``objective`` names its loss in
    :data:`attnlab.objectives.families.OBJECTIVES` (its default weights, and whether frame T
    is only a prediction target)."""

    objective: ClassVar[str]
    config: Any

    def forward(self, video: torch.Tensor) -> ObjectCentricOutput:
        raise NotImplementedError


@dataclass
class ABNOutput:
    """Attention Branch Networks (ResNet, WRN, DenseNet-BC, ResNeXt backbones)."""

    att_logits: torch.Tensor  # (B, num_classes), attention branch
    logits: torch.Tensor  # (B, num_classes), perception branch: the prediction
    attention: torch.Tensor  # (B, 1, h, w) in (0, 1), the branch's own M (never the override)


@dataclass
class JEPAOutput:
    """Joint-embedding predictive models (V-JEPA): predicted and target features of the masked
    tokens, the mask types' token sets concatenated along the token axis in mask-type order."""

    pred: torch.Tensor  # (B, sum(splits), D) the predictor's output
    target: torch.Tensor  # (B, sum(splits), D) what it must predict (no gradient)
    splits: tuple[int, ...]  # target tokens per mask type
    # the context encoder's tokens of each mask type, (B, Nc_i, D) each, for regularisers on them,
    # and their positions in the clip's token grid, (B, Nc_i) each
    context: tuple[torch.Tensor, ...] = ()
    context_index: tuple[torch.Tensor, ...] = ()

    def per_mask(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(pred, target) of each mask type: (B, splits[i], D) each."""
        sizes = list(self.splits)
        preds, targets = torch.split(self.pred, sizes, dim=1), torch.split(self.target, sizes, dim=1)
        return list(zip(preds, targets, strict=True))


@dataclass
class Seq2SeqOutput:
    """Encoder-decoders over token sequences (the GRU encoder-decoder with attention)."""

    logits: torch.Tensor  # (B, T, vocab) next-token logits, step t read target token t - 1 (BOS first)


@dataclass
class Detections3D:
    """One scene's 3-D detections after decoding and NMS (LiDAR frame, ``z`` the bottom face).

    Each value is a differentiable function of the head maps (so of the pseudo-image and the
    input points); ``anchor_index`` is the pre-NMS anchor each kept box came from, to read its
    raw logits back from :class:`PointPillarsOutput` or to explain it."""

    boxes: torch.Tensor  # (N, 7) x y z w l h ry
    scores: torch.Tensor  # (N,) sigmoid class score
    labels: torch.Tensor  # (N,) long, index into the model's class names
    anchor_index: torch.Tensor  # (N,) long, index into the anchors (dim 1 of the head maps)


@dataclass
class PointPillarsOutput:
    """PointPillars: raw head maps over the anchors, the pseudo-image, and (in eval mode) the
    decoded, NMS-filtered detections of every scene."""

    cls_logits: torch.Tensor  # (B, A, num_classes) per-anchor class logits (sigmoid)
    box_deltas: torch.Tensor  # (B, A, 7) residuals on the anchors (SECOND encoding)
    dir_logits: torch.Tensor  # (B, A, 2) heading direction bins
    anchors: torch.Tensor  # (A, 7) anchor boxes x y z w l h ry
    pseudo_image: torch.Tensor  # (B, C, ny, nx) the scattered pillar features
    detections: list[Detections3D] | None  # one per scene; None in training mode
