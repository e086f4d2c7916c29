"""SAM's prompt encoder: points, boxes and masks as sparse tokens and a dense map
(Kirillov et al. 2023, arXiv:2304.02643).

Reference: facebookresearch/segment-anything ``modeling/prompt_encoder.py`` (``PromptEncoder``,
``PositionEmbeddingRandom``).

Positions are encoded with random Fourier features (Tancik et al. 2020): a coordinate
``p`` in [0, 1]^2 becomes ``[sin(2 pi (2p - 1) G), cos(2 pi (2p - 1) G)]`` with a fixed Gaussian
G (2, D/2) stored in the state dict. A point's token is that encoding plus a learned embedding
of its label (0 background, 1 foreground); a box is its two corners with the learned
embeddings 2 (top-left) and 3 (bottom-right); a padding point (label -1) is the learned
"not a point" embedding alone, appended when points come without a box. Pixel coordinates are
shifted by 0.5 to the pixel centre before normalising by the (resized) input size. A mask
prompt (B, 1, 4h, 4w) is downscaled by two stride-2 convolutions to the dense embedding;
without one, the dense embedding is the learned "no mask" vector at every position.

Deviations: none.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.models.sam.common import LayerNorm2d


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier features of 2D coordinates (the Gaussian is a buffer, saved with the weights)."""

    positional_encoding_gaussian_matrix: torch.Tensor

    def __init__(self, num_pos_feats: int, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn(2, num_pos_feats))

    def _encode(self, coords: torch.Tensor) -> torch.Tensor:
        """(..., 2) coordinates in [0, 1] -> (..., 2 * num_pos_feats)."""
        coords = (2 * coords - 1) @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([coords.sin(), coords.cos()], dim=-1)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """The encoding of every cell centre of an (h, w) grid: (C, h, w)."""
        h, w = size
        G = self.positional_encoding_gaussian_matrix
        ys = (torch.arange(h, device=G.device, dtype=G.dtype) + 0.5) / h
        xs = (torch.arange(w, device=G.device, dtype=G.dtype) + 0.5) / w
        grid = torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w)], dim=-1)  # (h, w, 2) x, y
        return self._encode(grid).permute(2, 0, 1)  # (C, h, w)

    def forward_with_coords(self, coords: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """Pixel coordinates (..., 2) as x, y in an image of ``image_size`` (h, w) -> (..., C)."""
        scale = coords.new_tensor([image_size[1], image_size[0]])
        return self._encode(coords.float() / scale)


class PromptEncoder(nn.Module):
    """``forward(points, boxes, masks)`` -> sparse (B, N, D) and dense (B, D, h, w) embeddings."""

    def __init__(
        self,
        embed_dim: int,
        image_embedding_size: tuple[int, int],
        input_image_size: tuple[int, int],
        mask_in_chans: int,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size = image_embedding_size
        self.input_image_size = input_image_size
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        # 0 background point, 1 foreground point, 2 box top-left, 3 box bottom-right
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> torch.Tensor:
        """Positional encoding of the image embedding's grid: (1, D, h, w)."""
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def _embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        points = points + 0.5  # pixel centres
        if pad:  # a padding point stands where the box corners would be
            points = torch.cat([points, points.new_zeros(points.shape[0], 1, 2)], dim=1)
            labels = torch.cat([labels, -labels.new_ones(labels.shape[0], 1)], dim=1)
        emb = self.pe_layer.forward_with_coords(points, self.input_image_size)  # (B, N, D)
        label = labels[..., None]  # (B, N, 1)
        emb = torch.where(label == -1, self.not_a_point_embed.weight, emb)
        emb = emb + (label == 0) * self.point_embeddings[0].weight
        return emb + (label == 1) * self.point_embeddings[1].weight

    def _embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        corners = (boxes + 0.5).reshape(-1, 2, 2)  # (B, 2 corners, x y)
        emb = self.pe_layer.forward_with_coords(corners, self.input_image_size)  # (B, 2, D)
        corner = torch.cat([self.point_embeddings[2].weight, self.point_embeddings[3].weight])  # (2, D)
        return emb + corner

    def batch_size(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> int:
        if points is not None:
            return points[0].shape[0]
        if boxes is not None:
            return boxes.shape[0]
        return masks.shape[0] if masks is not None else 1

    def check(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> None:
        if points is not None:
            coords, labels = points
            if coords.dim() != 3 or coords.shape[-1] != 2 or labels.shape != coords.shape[:2]:
                raise InputError(
                    f"points must be coords (B, N, 2) and labels (B, N), got {tuple(coords.shape)} "
                    f"and {tuple(labels.shape)}"
                )
        if boxes is not None and (boxes.dim() not in (2, 3) or boxes.shape[-1] != 4):
            raise InputError(f"boxes must be (B, 4) or (B, 1, 4) xyxy, got {tuple(boxes.shape)}")
        if masks is not None and (masks.dim() != 4 or tuple(masks.shape[1:]) != (1, *self.mask_input_size)):
            raise InputError(
                f"mask prompts must be (B, 1, {self.mask_input_size[0]}, {self.mask_input_size[1]}) "
                f"logits, got {tuple(masks.shape)}"
            )
        sizes = {
            n: t.shape[0]
            for n, t in (
                ("points", points[0] if points else None),
                ("boxes", boxes),
                ("masks", masks),
            )
            if t is not None
        }
        if len(set(sizes.values())) > 1:
            raise InputError(f"points, boxes and masks must have one batch size, got {sizes}")

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None = None,
        boxes: torch.Tensor | None = None,
        masks: torch.Tensor | None = None,
        mask_valid: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``mask_valid`` (B,) bool: rows of ``masks`` that are prompts; the others get the "no mask"
        embedding (an extension: the official takes masks for all prompt sets or none)."""
        self.check(points, boxes, masks)
        B = self.batch_size(points, boxes, masks)
        weight = self.no_mask_embed.weight
        parts = [weight.new_zeros(B, 0, self.embed_dim)]
        if points is not None:
            parts.append(self._embed_points(points[0], points[1], pad=boxes is None))
        if boxes is not None:
            parts.append(self._embed_boxes(boxes))
        sparse = torch.cat(parts, dim=1)  # (B, N, D)
        h, w = self.image_embedding_size
        no_mask = weight.reshape(1, -1, 1, 1).expand(B, -1, h, w)  # (B, D, h, w)
        if masks is None:
            return sparse, no_mask
        dense = self.mask_downscaling(masks)  # (B, D, h, w)
        if mask_valid is not None:
            if mask_valid.shape != (B,) or mask_valid.dtype != torch.bool:
                raise InputError(
                    f"mask_valid must be a bool (B={B},) tensor, "
                    f"got {mask_valid.dtype} {tuple(mask_valid.shape)}"
                )
            dense = torch.where(mask_valid[:, None, None, None], dense, no_mask)
        return sparse, dense
