"""Segment Anything Model (Kirillov et al. 2023, "Segment Anything", arXiv:2304.02643).

Reference: facebookresearch/segment-anything ``modeling/sam.py`` (``Sam``) and
``build_sam.py`` (the ViT-B/L/H configurations). The image encoder
(:mod:`~attnlab.models.sam.image_encoder`) runs once per image; the prompt encoder
(:mod:`~attnlab.models.sam.prompt_encoder`) and mask decoder
(:mod:`~attnlab.models.sam.mask_decoder`) run once per prompt set, so one image with N boxes
is one encoder pass and one batched decoder pass of N (:meth:`Sam.decode`).

The parameter names are the official ones: an official checkpoint (``sam_vit_b_01ec64.pth``,
and L/H) loads into ``Sam(SAM_VIT_B)`` (``SAM_VIT_L``, ``SAM_VIT_H``) with no key mapping
(:func:`attnlab.runs.official.load_official_sam`).

Seed 004's prompt tuning adds :class:`~attnlab.models.sam.prompt_token.PromptToken`
(``prompt_token_dim``), appended to the sparse prompt embeddings; ``freeze_learned_embedding``
freezes SAM's learned point/box embeddings and ``freeze_image_encoder`` the encoder, as the
thesis trains only the token and the mask decoder.

Deviations: ``forward`` takes images already normalised and padded (:meth:`Sam.preprocess`) and one
prompt set per image as tensors, instead of the official list of dicts; it returns every mask
token's output beside the multimask selection (training losses need them). The ViT-B/L/H
presets are configs (``SAM_VIT_B`` ...), not registered models: the registry-wide tests run a
forward and backward of every registered model, minutes at 1024 x 1024 on a CPU.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.models._registry import register_model
from attnlab.models.sam.boxes import check_boxes
from attnlab.models.sam.image_encoder import ImageEncoderConfig, ImageEncoderViT
from attnlab.models.sam.mask_decoder import MaskDecoder, TwoWayTransformer
from attnlab.models.sam.prompt_encoder import PromptEncoder
from attnlab.models.sam.prompt_token import PromptToken
from attnlab.models.sam.transforms import (
    normalize_and_pad,
    postprocess_masks,
    resize_longest_side,
    resized_shape,
)


@dataclass
class SamConfig:
    img_size: int = 1024
    in_chans: int = 3
    patch_size: int = 16
    encoder_embed_dim: int = 768
    encoder_depth: int = 12
    encoder_num_heads: int = 12
    encoder_global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11)
    window_size: int = 14
    prompt_embed_dim: int = 256  # the neck's output channels and the decoder's width
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    mask_threshold: float = 0.0  # logits above it are foreground
    prompt_token_dim: int | None = None  # seed 004's prompt-tuning token (128 in the thesis); None: no token
    freeze_learned_embedding: bool = False  # SAM's point/box/not-a-point embeddings get no gradient
    freeze_image_encoder: bool = False

    def image_encoder(self) -> ImageEncoderConfig:
        return ImageEncoderConfig(
            img_size=self.img_size,
            patch_size=self.patch_size,
            in_chans=self.in_chans,
            embed_dim=self.encoder_embed_dim,
            depth=self.encoder_depth,
            num_heads=self.encoder_num_heads,
            out_chans=self.prompt_embed_dim,
            window_size=self.window_size,
            global_attn_indexes=self.encoder_global_attn_indexes,
        )

    @property
    def grid(self) -> int:
        return self.img_size // self.patch_size


SAM_VIT_B = SamConfig()
SAM_VIT_L = SamConfig(
    encoder_embed_dim=1024,
    encoder_depth=24,
    encoder_num_heads=16,
    encoder_global_attn_indexes=(5, 11, 17, 23),
)
SAM_VIT_H = SamConfig(
    encoder_embed_dim=1280,
    encoder_depth=32,
    encoder_num_heads=16,
    encoder_global_attn_indexes=(7, 15, 23, 31),
)
SMALL_REFERENCE = SamConfig(
    img_size=128, encoder_embed_dim=96, encoder_depth=2, encoder_num_heads=4,
    encoder_global_attn_indexes=(1,), window_size=4, prompt_embed_dim=64, decoder_mlp_dim=256,
    decoder_num_heads=4, iou_head_hidden_dim=64,
)  # fmt: skip
CELLS = SamConfig(
    img_size=128, patch_size=8, encoder_embed_dim=96, encoder_depth=4, encoder_num_heads=4,
    encoder_global_attn_indexes=(1, 3), window_size=8, prompt_embed_dim=64, decoder_mlp_dim=256,
    decoder_num_heads=4, iou_head_hidden_dim=64,
)  # fmt: skip
CELLS_PROMPT_TUNING = dataclasses.replace(
    CELLS, prompt_token_dim=128, freeze_learned_embedding=True, freeze_image_encoder=True
)


@dataclass
class SamOutput:
    """Prompted masks: one row per prompt set."""

    masks: torch.Tensor  # (B, M, 4h, 4w) low-resolution logits, M = 3 with multimask_output else 1
    iou_predictions: torch.Tensor  # (B, M)
    all_masks: torch.Tensor  # (B, K, 4h, 4w) every mask token's logits (K = num_multimask_outputs + 1)
    all_iou_predictions: torch.Tensor  # (B, K)


@register_model("sam-vit-b", config=SAM_VIT_B)
@register_model("sam-vit-l", config=SAM_VIT_L)
@register_model("sam-vit-h", config=SAM_VIT_H)
@register_model("sam-small-reference", config=SMALL_REFERENCE)
@register_model("sam-cells", config=CELLS)
@register_model("sam-cells-prompt-tuning", config=CELLS_PROMPT_TUNING)
class Sam(nn.Module):
    """``forward(images, boxes=..., points=..., point_labels=..., mask_inputs=...)`` -> :class:`SamOutput`."""

    def __init__(self, config: SamConfig) -> None:
        super().__init__()
        self.config = config
        self.image_encoder = ImageEncoderViT(config.image_encoder())
        grid, size = config.grid, config.img_size
        self.prompt_encoder = PromptEncoder(
            embed_dim=config.prompt_embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(size, size),
            mask_in_chans=config.mask_in_chans,
        )
        self.mask_decoder = MaskDecoder(
            transformer_dim=config.prompt_embed_dim,
            transformer=TwoWayTransformer(
                depth=config.decoder_depth,
                embedding_dim=config.prompt_embed_dim,
                num_heads=config.decoder_num_heads,
                mlp_dim=config.decoder_mlp_dim,
            ),
            num_multimask_outputs=config.num_multimask_outputs,
            iou_head_depth=config.iou_head_depth,
            iou_head_hidden_dim=config.iou_head_hidden_dim,
        )
        self.prompt_token: PromptToken | None = None
        if config.prompt_token_dim is not None:
            self.prompt_token = PromptToken(config.prompt_token_dim, config.prompt_embed_dim)
        if config.freeze_learned_embedding:
            for module in (*self.prompt_encoder.point_embeddings, self.prompt_encoder.not_a_point_embed):
                module.requires_grad_(False)
        if config.freeze_image_encoder:
            self.image_encoder.requires_grad_(False)

    # ----- images --------------------------------------------------------------------------------
    def preprocess(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Images (B, 3, H, W) in 0-255 -> the encoder's input (B, 3, S, S) and the resized (h, w)."""
        if images.dim() != 4 or images.shape[1] != self.config.in_chans:
            raise InputError(
                f"SAM takes images (B, {self.config.in_chans}, H, W) in 0-255, got {tuple(images.shape)}"
            )
        resized = resize_longest_side(images.float(), self.config.img_size)
        return normalize_and_pad(resized, self.config.img_size), (resized.shape[-2], resized.shape[-1])

    def input_size(self, original: tuple[int, int]) -> tuple[int, int]:
        """Where an (H, W) image lies inside the padded square after resizing."""
        return resized_shape(original[0], original[1], self.config.img_size)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Preprocessed images (B, 3, S, S) -> image embeddings (B, C, h, w)."""
        return self.image_encoder(images)

    def postprocess(self, masks: torch.Tensor, original: tuple[int, int]) -> torch.Tensor:
        """Low-res logits (B, M, 4h, 4w) -> logits (B, M, H, W) on the original image."""
        return postprocess_masks(masks, self.input_size(original), original, self.config.img_size)

    # ----- prompts -------------------------------------------------------------------------------
    def encode_prompts(
        self,
        *,
        boxes: torch.Tensor | None = None,
        points: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
        mask_valid: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse (B, N, C) and dense (B, C, h, w) embeddings; coordinates in the resized image's pixels."""
        if (points is None) != (point_labels is None):
            raise InputError("points and point_labels come together")
        if boxes is not None:
            check_boxes(boxes, (self.config.img_size, self.config.img_size), "boxes (in the resized image)")
        pts = (points, point_labels) if points is not None and point_labels is not None else None
        if pts is None and boxes is None and mask_inputs is None:
            raise InputError("give at least one prompt: boxes, points or mask_inputs")
        sparse, dense = self.prompt_encoder(pts, boxes, mask_inputs, mask_valid)
        if self.prompt_token is not None:
            sparse = torch.cat([sparse, self.prompt_token(sparse.shape[0]).to(sparse.dtype)], dim=1)
        return sparse, dense

    def decode(
        self,
        image_embeddings: torch.Tensor,
        *,
        boxes: torch.Tensor | None = None,
        points: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
        mask_valid: torch.Tensor | None = None,
        multimask_output: bool = False,
    ) -> SamOutput:
        """Masks for B prompt sets on ``image_embeddings`` (B or 1, C, h, w): one embedding per
        prompt set, or one image's embedding shared by all of them (computed once)."""
        sparse, dense = self.encode_prompts(
            boxes=boxes,
            points=points,
            point_labels=point_labels,
            mask_inputs=mask_inputs,
            mask_valid=mask_valid,
        )
        c = self.config
        expected = (c.prompt_embed_dim, c.grid, c.grid)
        if image_embeddings.dim() != 4 or tuple(image_embeddings.shape[1:]) != expected:
            raise InputError(
                f"image embeddings must be (B, {', '.join(map(str, expected))}), "
                f"got {tuple(image_embeddings.shape)}"
            )
        if image_embeddings.shape[0] not in (1, sparse.shape[0]):
            raise InputError(
                f"{image_embeddings.shape[0]} image embeddings for {sparse.shape[0]} prompt sets "
                "(need 1 or as many)"
            )
        all_masks, all_iou = self.mask_decoder.predict_masks(
            image_embeddings, self.prompt_encoder.get_dense_pe(), sparse, dense
        )
        chosen = slice(1, None) if multimask_output else slice(0, 1)
        return SamOutput(all_masks[:, chosen], all_iou[:, chosen], all_masks, all_iou)

    def forward(
        self,
        images: torch.Tensor,
        *,
        boxes: torch.Tensor | None = None,
        points: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
        mask_valid: torch.Tensor | None = None,
        multimask_output: bool = False,
    ) -> SamOutput:
        """Preprocessed images (B, 3, S, S) and one prompt set each: boxes (B, 4), points (B, P, 2) with
        labels (B, P) (1 foreground, 0 background, -1 padding), mask logits (B, 1, 4h, 4w) (rows where
        ``mask_valid`` (B,) is False count as no mask prompt)."""
        return self.decode(
            self.encode(images),
            boxes=boxes,
            points=points,
            point_labels=point_labels,
            mask_inputs=mask_inputs,
            mask_valid=mask_valid,
            multimask_output=multimask_output,
        )

    def example_inputs(self, batch_size: int = 2) -> dict[str, object]:
        """Every kind of prompt at once, so every parameter is used (registry-wide tests)."""
        c = self.config
        s, low = c.img_size, 4 * c.grid
        images = torch.randn(batch_size, c.in_chans, s, s)
        boxes = torch.tensor([[0.1 * s, 0.2 * s, 0.6 * s, 0.7 * s]]).expand(batch_size, -1)
        points = torch.tensor([[0.3 * s, 0.3 * s], [0.9 * s, 0.1 * s], [0.0, 0.0]]).expand(batch_size, -1, -1)
        labels = torch.tensor([1, 0, -1]).expand(batch_size, -1)
        return {
            "images": images,
            "boxes": boxes,
            "points": points,
            "point_labels": labels,
            "mask_inputs": torch.randn(batch_size, 1, low, low),
            "mask_valid": torch.arange(batch_size) % 2 == 0,  # one with, one without a mask prompt
        }
