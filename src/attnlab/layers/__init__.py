"""Attention primitives, one concept per file (see docs/layers.md)."""

from attnlab.layers._recording import RecordsAttention
from attnlab.layers.aa_conv import AugmentedConv2d
from attnlab.layers.additive import AdditiveAttention, SpatialSoftAttention, doubly_stochastic_penalty
from attnlab.layers.attention import MultiHeadAttention
from attnlab.layers.block_attention import LocalBlockSelfAttention1d
from attnlab.layers.block_attention2d import LocalBlockSelfAttention2d
from attnlab.layers.branch import AttentionBranchHead, AttentionMechanism, BranchOutput, apply_attention
from attnlab.layers.highway import Highway
from attnlab.layers.kv_memory import KeyValueMemory
from attnlab.layers.luong import LuongAttention
from attnlab.layers.masks import attention_weights, causal_mask, masked_softmax, merge_masks, video_block_mask
from attnlab.layers.non_local import NonLocalBlock
from attnlab.layers.pairwise import PairwiseSelfAttention, PatchwiseSelfAttention
from attnlab.layers.pooling import AttentiveClassifier, AttentivePooler, CrossAttentionBlock
from attnlab.layers.pos_embed import (
    LearnedPositionEmbedding,
    SinusoidalPositionEmbedding,
    sincos_pos_embed,
    sincos_pos_embed_1d,
    sincos_pos_embed_2d,
    sincos_pos_embed_3d,
)
from attnlab.layers.residual_attention import PreActBottleneck, ResidualAttentionModule
from attnlab.layers.slot_attention import QueryObjectExtractor, SlotAttention
from attnlab.layers.squeeze_excite import SqueezeExcite
from attnlab.layers.transformer import Mlp, TransformerBlock

__all__ = [
    "AdditiveAttention",
    "AttentionBranchHead",
    "AttentionMechanism",
    "AttentiveClassifier",
    "AttentivePooler",
    "AugmentedConv2d",
    "BranchOutput",
    "CrossAttentionBlock",
    "Highway",
    "KeyValueMemory",
    "LearnedPositionEmbedding",
    "LocalBlockSelfAttention1d",
    "LocalBlockSelfAttention2d",
    "LuongAttention",
    "Mlp",
    "MultiHeadAttention",
    "NonLocalBlock",
    "PairwiseSelfAttention",
    "PatchwiseSelfAttention",
    "PreActBottleneck",
    "QueryObjectExtractor",
    "RecordsAttention",
    "ResidualAttentionModule",
    "SinusoidalPositionEmbedding",
    "SlotAttention",
    "SpatialSoftAttention",
    "SqueezeExcite",
    "TransformerBlock",
    "apply_attention",
    "attention_weights",
    "causal_mask",
    "doubly_stochastic_penalty",
    "masked_softmax",
    "merge_masks",
    "sincos_pos_embed",
    "sincos_pos_embed_1d",
    "sincos_pos_embed_2d",
    "sincos_pos_embed_3d",
    "video_block_mask",
]
