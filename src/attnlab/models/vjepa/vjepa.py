"""V-JEPA: feature prediction from video (Bardes et al. 2024, "Revisiting Feature Prediction for
Learning Visual Representations from Video", arXiv:2404.08471).

Reference: facebookresearch/jepa ``app/vjepa/train.py`` and ``app/vjepa/utils.py``
(``init_video_model``; ``MultiMaskWrapper`` / ``PredictorMultiMaskWrapper``).

Three parts: the context encoder (x-encoder) sees only the context tokens of each mask type;
the target encoder (y-encoder) is an EMA copy of it that sees the whole clip without
gradients; targets are its features, layer-normalised without affine parameters, at the target
tokens. The predictor maps the context features of mask type i (with mask token i) to
predictions of the target features. The L1 loss is in :mod:`attnlab.objectives.vjepa`, the
masks in :mod:`attnlab.objectives.vjepa_masks`, the EMA update in the training task: this
module holds only the architecture.

``target="pixels"`` is the paper's pixel-prediction ablation (MAE-style targets): the predictor
outputs the C x tubelet x patch x patch pixels of each target tubelet, layer-normalised per tubelet
as the features are (MAE's ``norm_pix_loss``); the EMA target encoder is then only the encoder
that frozen evaluation reads.

Deviations: none in the computation of the feature-prediction model. The target encoder is a
frozen submodule (no gradients, eval mode) rather than a separate object of the training
script; it starts as a copy of the context encoder, as the official ``copy.deepcopy(encoder)``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import InputError
from attnlab.layers.vit_blocks import gather_tokens
from attnlab.models._registry import register_model
from attnlab.models._submodel import freeze
from attnlab.models.outputs import JEPAOutput
from attnlab.models.vjepa.encoder import VideoViT, VideoViTConfig, check_clips
from attnlab.models.vjepa.predictor import Predictor, PredictorConfig


@dataclass
class VJEPAConfig:
    img_size: int = 224
    num_frames: int = 16
    patch_size: int = 16
    tubelet_size: int = 2
    in_chans: int = 3
    dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    uniform_power: bool = True
    pred_dim: int = 384
    pred_depth: int = 12
    pred_num_heads: int = 16  # official: the encoder's
    num_mask_tokens: int = 2  # one per mask type of the recipe's masking
    init_std: float = 0.02
    target: Literal["features", "pixels"] = "features"  # what the predictor predicts

    def pixels_per_token(self) -> int:
        return self.in_chans * self.tubelet_size * self.patch_size**2

    def encoder(self) -> VideoViTConfig:
        return VideoViTConfig(
            img_size=self.img_size,
            num_frames=self.num_frames,
            patch_size=self.patch_size,
            tubelet_size=self.tubelet_size,
            in_chans=self.in_chans,
            dim=self.dim,
            depth=self.depth,
            num_heads=self.num_heads,
            mlp_ratio=self.mlp_ratio,
            qkv_bias=self.qkv_bias,
            uniform_power=self.uniform_power,
            init_std=self.init_std,
        )

    def predictor(self) -> PredictorConfig:
        return PredictorConfig(
            grid=self.encoder().grid(),
            embed_dim=self.dim,
            out_dim=self.pixels_per_token() if self.target == "pixels" else None,
            dim=self.pred_dim,
            depth=self.pred_depth,
            num_heads=self.pred_num_heads,
            mlp_ratio=self.mlp_ratio,
            qkv_bias=self.qkv_bias,
            num_mask_tokens=self.num_mask_tokens,
            uniform_power=self.uniform_power,
            init_std=self.init_std,
        )


SMALL_REFERENCE = VJEPAConfig(
    img_size=32, num_frames=4, patch_size=8, tubelet_size=2, dim=64, depth=2, num_heads=4,
    pred_dim=32, pred_depth=2, pred_num_heads=4,
)  # fmt: skip
MOVING_FMNIST = VJEPAConfig(
    img_size=48, num_frames=8, patch_size=8, tubelet_size=2, in_chans=1, dim=96, depth=4, num_heads=4,
    pred_dim=64, pred_depth=2, pred_num_heads=4,
)  # fmt: skip


def patchify(clips: torch.Tensor, config: VJEPAConfig) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, N, C * t * p * p): each tubelet's pixels, tokens in the encoder's order."""
    t, p = config.tubelet_size, config.patch_size
    B, C, T, H, W = clips.shape
    x = clips.reshape(B, C, T // t, t, H // p, p, W // p, p)
    x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)  # (B, T', H', W', C, t, p, p)
    return x.reshape(B, (T // t) * (H // p) * (W // p), C * t * p * p)


@register_model("vjepa-vitl16", config=VJEPAConfig())
@register_model("vjepa-vith16", config=VJEPAConfig(dim=1280, depth=32, num_heads=16, pred_num_heads=16))
@register_model("vjepa-small-reference", config=SMALL_REFERENCE)
@register_model("vjepa-tiny-mfmnist", config=MOVING_FMNIST)
class VJEPA(nn.Module):
    """``forward(clips, masks_enc, masks_pred)`` -> :class:`JEPAOutput`.

    clips (B, C, T, H, W); ``masks_enc[i]`` (B, Nc_i) and ``masks_pred[i]`` (B, Nt_i) int64
    indices into the T'H'W' tokens of mask type i (the official collator's output).
    """

    def __init__(self, config: VJEPAConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = VideoViT(config.encoder())
        self.predictor = Predictor(config.predictor())
        self.target_encoder = freeze(copy.deepcopy(self.encoder))

    def example_inputs(self, batch_size: int = 2) -> dict[str, object]:
        """The smallest clip (2 x 2 x 2 tokens) and fixed masks (used by the registry-wide tests)."""
        c = self.config
        clips = torch.randn(batch_size, c.in_chans, 2 * c.tubelet_size, 2 * c.patch_size, 2 * c.patch_size)
        rows = torch.arange(8).expand(batch_size, -1)  # (B, 8) token indices
        masks_enc = [rows[:, :3], rows[:, ::2]]
        masks_pred = [rows[:, 3:], rows[:, 1::2]]
        return {
            "clips": clips,
            "masks_enc": masks_enc[: c.num_mask_tokens],
            "masks_pred": masks_pred[: c.num_mask_tokens],
        }

    @torch.no_grad()
    def targets(self, clips: torch.Tensor) -> torch.Tensor:
        """Layer-normalised (no affine) target-encoder features of the whole clip (B, N, D), or with
        ``target="pixels"`` each tubelet's pixels (B, N, C * tubelet * patch^2), normalised the same way."""
        h = patchify(clips, self.config) if self.config.target == "pixels" else self.target_encoder(clips)
        return F.layer_norm(h, (h.shape[-1],))

    def forward(
        self, clips: torch.Tensor, masks_enc: list[torch.Tensor], masks_pred: list[torch.Tensor]
    ) -> JEPAOutput:
        if not masks_enc or len(masks_enc) != len(masks_pred):
            raise InputError(
                f"masks_enc and masks_pred must be equally long non-empty lists (one per mask type), "
                f"got {len(masks_enc)} and {len(masks_pred)}"
            )
        for i, (enc, pred) in enumerate(zip(masks_enc, masks_pred, strict=True)):
            if enc.dim() != 2 or pred.dim() != 2 or enc.shape[1] == 0 or pred.shape[1] == 0:
                raise InputError(
                    f"mask type {i} leaves no context or no target: context {tuple(enc.shape)}, "
                    f"target {tuple(pred.shape)} (need (B, K>0) each)"
                )
        grid = check_clips(clips, self.config.encoder())
        h = self.targets(clips)  # (B, N, D)
        preds, targets, contexts = [], [], []
        for i, (enc, pred) in enumerate(zip(masks_enc, masks_pred, strict=True)):
            z = self.encoder(clips, enc)  # (B, Nc_i, D)
            contexts.append(z)
            preds.append(self.predictor(z, enc, pred, mask_index=i, grid=grid))  # (B, Nt_i, D)
            targets.append(gather_tokens(h, pred))  # (B, Nt_i, D)
        return JEPAOutput(
            pred=torch.cat(preds, dim=1),
            target=torch.cat(targets, dim=1),
            splits=tuple(p.shape[1] for p in masks_pred),
            context=tuple(contexts),
            context_index=tuple(masks_enc),
        )


# facebookresearch/jepa checkpoint keys -> ours, after the ``module.`` / ``backbone.`` prefixes are
# stripped and each fused ``attn.qkv`` is split into ``attn.q_proj`` (rows [:D]) and
# ``attn.kv_proj`` (rows [D:], keys first) by :func:`attnlab.runs.official.load_official_vjepa`.
ENCODER_KEYS: list[tuple[str, str | None]] = []  # the encoder's names are the official ones
PREDICTOR_KEYS: list[tuple[str, str | None]] = [
    (r"^predictor_embed\.", "embed."),
    (r"^predictor_pos_embed$", "pos_embed"),
    (r"^predictor_blocks\.", "blocks."),
    (r"^predictor_norm\.", "norm."),
    (r"^predictor_proj\.", "proj."),
]
# the official AttentiveClassifier -> attnlab.layers.pooling.AttentiveClassifier(self_attn_on="queries",
# cross_out_proj=False): the official CrossAttention never applies its ``proj``, so it is dropped
PROBE_KEYS: list[tuple[str, str | None]] = [
    (r"^pooler\.cross_attention_block\.xattn\.proj\.", None),
    (r"^pooler\.cross_attention_block\.xattn\.q\.", "pooler.cross_block.attn.q_proj."),
    (r"^pooler\.cross_attention_block\.xattn\.kv\.", "pooler.cross_block.attn.kv_proj."),
    (r"^pooler\.cross_attention_block\.", "pooler.cross_block."),
]
