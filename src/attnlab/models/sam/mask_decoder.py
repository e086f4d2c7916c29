"""SAM's mask decoder: a two-way transformer between prompt tokens and the image embedding, a
hypernetwork per output mask and an IoU head (Kirillov et al. 2023, arXiv:2304.02643).

Reference: facebookresearch/segment-anything ``modeling/transformer.py`` (``TwoWayTransformer``,
``TwoWayAttentionBlock``, ``Attention``) and ``modeling/mask_decoder.py`` (``MaskDecoder``).

Tokens are [IoU token, K mask tokens, prompt tokens]. Each two-way block: self-attention of the
tokens (the first block without the prompt positional encoding added to queries and keys),
token-to-image cross-attention, an MLP on the tokens, image-to-token cross-attention updating
the image embedding; post-norm after each. The cross-attentions work at ``dim / 2`` inside
(``attention_downsample_rate``). A final token-to-image attention and LayerNorm follow. The
image embedding is upscaled 4x by two transposed convolutions; mask k is the dot product of
mask token k's hypernetwork output with every upscaled pixel. ``multimask_output`` keeps masks
1..K-1 (three for ambiguous prompts), otherwise mask 0.

Every attention records its weights inside :func:`attnlab.explain.capture`; the pictures use
``transformer.final_attn_token_to_image`` (tokens to the h x w grid).

Deviations: none in what is computed; attention runs on ``scaled_dot_product_attention``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.layers._recording import RecordsAttention
from attnlab.layers.masks import attention_weights
from attnlab.models.sam.common import MLP, LayerNorm2d, MLPBlock


class DecoderAttention(RecordsAttention):
    """Attention with separate q, k, v projections to ``dim / downsample_rate`` (official names)."""

    def __init__(self, dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.internal_dim = dim // downsample_rate
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, self.internal_dim)
        self.k_proj = nn.Linear(dim, self.internal_dim)
        self.v_proj = nn.Linear(dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        return x.view(B, N, self.num_heads, C // self.num_heads).transpose(1, 2)  # (B, nh, N, C/nh)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q (B or 1, Nq, dim), k and v (B or 1, Nk, dim): a side with batch 1 (one image's tokens,
        the same for every prompt set) is projected once and broadcast."""
        q, k, v = self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))
        B = max(q.shape[0], k.shape[0])
        q, k, v = q.expand(B, -1, -1, -1), k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1)
        scale = q.shape[-1] ** -0.5
        if self._recording_differentiable:
            weights = attention_weights(q, k, None, scale)  # (B, nh, Nq, Nk)
            self._record(weights)
            out = weights @ v
        else:
            if self._recording:
                with torch.no_grad():
                    self._record(attention_weights(q, k, None, scale))
            out = F.scaled_dot_product_attention(q, k, v, scale=scale)  # (B, nh, Nq, C/nh)
        B, _, Nq, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(B, Nq, self.internal_dim))  # (B, Nq, dim)


class TwoWayAttentionBlock(nn.Module):
    def __init__(
        self, dim: int, num_heads: int, mlp_dim: int, downsample_rate: int, skip_first_layer_pe: bool
    ) -> None:
        super().__init__()
        self.self_attn = DecoderAttention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = DecoderAttention(dim, num_heads, downsample_rate)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLPBlock(dim, mlp_dim, nn.ReLU)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = DecoderAttention(dim, num_heads, downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor, key_pe: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.skip_first_layer_pe:  # the first block replaces the tokens (which hold their PE already)
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)
        q, k = queries + query_pe, keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys))
        queries = self.norm3(queries + self.mlp(queries))
        q, k = queries + query_pe, keys + key_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(
        self, depth: int, embedding_dim: int, num_heads: int, mlp_dim: int, downsample_rate: int = 2
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(embedding_dim, num_heads, mlp_dim, downsample_rate, i == 0)
            for i in range(depth)
        )
        self.final_attn_token_to_image = DecoderAttention(embedding_dim, num_heads, downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(
        self, image_embedding: torch.Tensor, image_pe: torch.Tensor, point_embedding: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """image (B or 1, C, h, w), its PE (B or 1, C, h, w), tokens (B, N, C) -> tokens (B, N, C),
        image (B, hw, C). An image of batch 1 is the same for every prompt set: the first block's
        projections of it are computed once (it becomes B different ones after that block)."""
        keys = image_embedding.flatten(2).transpose(1, 2)  # (B, hw, C)
        key_pe = image_pe.flatten(2).transpose(1, 2)  # (B, hw, C)
        queries = point_embedding
        for layer in self.layers:
            queries, keys = layer(queries, keys, point_embedding, key_pe)
        q, k = queries + point_embedding, keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys


class MaskDecoder(nn.Module):
    """Image embedding + prompt embeddings -> mask logits (B, M, 4h, 4w) and IoU predictions (B, M)."""

    def __init__(
        self,
        *,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
    ) -> None:
        super().__init__()
        dim = transformer_dim
        self.transformer = transformer
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth)

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``image_embeddings`` (B, C, h, w) holds one embedding per prompt set (B prompt sets); see
        :meth:`attnlab.models.sam.sam.Sam.decode` for one image with many prompts."""
        masks, iou_pred = self.predict_masks(
            image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings
        )
        chosen = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, chosen], iou_pred[:, chosen]

    def predict_masks(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        B = sparse_prompt_embeddings.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight])  # (1 + K, C)
        tokens = torch.cat([output_tokens.expand(B, -1, -1), sparse_prompt_embeddings], dim=1)  # (B, N, C)
        _, C, h, w = image_embeddings.shape
        if image_embeddings.shape[0] == 1 and dense_prompt_embeddings.stride(0) == 0:
            # one image and no mask prompt (the dense embedding is one broadcast vector): the image
            # side is the same for every prompt set, so it enters the transformer once
            src, pos_src = image_embeddings + dense_prompt_embeddings[:1], image_pe  # (1, C, h, w) each
        else:
            src = image_embeddings.expand(B, -1, -1, -1) + dense_prompt_embeddings  # (B, C, h, w)
            pos_src = image_pe.expand(B, -1, -1, -1)  # (B, C, h, w)
        hs, src = self.transformer(src, pos_src, tokens)  # (B, N, C), (B, hw, C)
        iou_token_out = hs[:, 0, :]  # (B, C)
        mask_tokens_out = hs[:, 1 : 1 + self.num_mask_tokens, :]  # (B, K, C)
        src = src.transpose(1, 2).reshape(B, C, h, w)  # (B, C, h, w)
        upscaled = self.output_upscaling(src)  # (B, C/8, 4h, 4w)
        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )  # (B, K, C/8)
        _, c8, H, W = upscaled.shape
        masks = (hyper_in @ upscaled.view(B, c8, H * W)).view(B, -1, H, W)  # (B, K, 4h, 4w)
        return masks, self.iou_prediction_head(iou_token_out)  # (B, K, 4h, 4w), (B, K)
