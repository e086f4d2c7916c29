"""A small transformer sequence classifier with a [CLS] token (the demo model).

Tokens -> embedding + learned positions, a [CLS] token prepended, ``depth``
pre-norm transformer blocks, LayerNorm, linear head on [CLS]. The architecture of
BERT/ViT classification reduced to what a CPU trains in a minute; its attention
from [CLS] shows which tokens decided the class.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.layers.transformer import TransformerBlock
from attnlab.models._registry import register_model
from attnlab.models.outputs import ClassifierOutput


@dataclass
class TransformerClassifierConfig:
    vocab_size: int = 24
    num_classes: int = 8
    max_len: int = 64
    dim: int = 64
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.0
    attn_drop: float = 0.0


@register_model(
    "transformer-classifier-tiny",
    config=TransformerClassifierConfig(),
)
@register_model(
    "transformer-classifier-small",
    config=TransformerClassifierConfig(dim=192, depth=6, num_heads=6, mlp_ratio=4.0, max_len=512),
)
class TransformerClassifier(nn.Module):
    """Sequence classifier: tokens (B, L) long -> :class:`ClassifierOutput`."""

    def __init__(self, config: TransformerClassifierConfig) -> None:
        super().__init__()
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, c.max_len + 1, c.dim))
        self.blocks = nn.ModuleList(
            TransformerBlock(
                c.dim,
                num_heads=c.num_heads,
                mlp_ratio=c.mlp_ratio,
                attn_drop=c.attn_drop,
                proj_drop=c.dropout,
            )
            for _ in range(c.depth)
        )
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, c.num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.embed.weight, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        """Valid inputs for ``forward`` (used by the registry-wide tests)."""
        return {"tokens": torch.randint(self.config.vocab_size, (batch_size, self.config.max_len))}

    def _check(self, tokens: torch.Tensor) -> None:
        if tokens.dim() != 2 or tokens.dtype != torch.long:
            raise InputError(f"tokens must be int64 (B, L), got {tokens.dtype} {tuple(tokens.shape)}")
        if tokens.shape[1] > self.config.max_len:
            raise InputError(f"sequence length {tokens.shape[1]} exceeds max_len={self.config.max_len}")
        low, high = (int(tokens.min()), int(tokens.max())) if tokens.numel() else (0, 0)
        if low < 0 or high >= self.config.vocab_size:
            raise InputError(f"token ids must lie in [0, {self.config.vocab_size}), got [{low}, {high}]")

    def forward(
        self, tokens: torch.Tensor, *, key_padding_mask: torch.Tensor | None = None
    ) -> ClassifierOutput:
        self._check(tokens)
        B, L = tokens.shape
        x = torch.cat([self.cls_token.expand(B, -1, -1), self.embed(tokens)], dim=1)  # (B, 1 + L, D)
        x = x + self.pos_embed[:, : L + 1]
        if key_padding_mask is not None:  # the [CLS] key is never padding
            key_padding_mask = torch.cat([key_padding_mask.new_zeros(B, 1), key_padding_mask], dim=1)
        for block in self.blocks:
            x = block(x, key_padding_mask=key_padding_mask)
        cls = self.norm(x[:, 0])  # (B, D)
        return ClassifierOutput(logits=self.head(cls), features=cls)
