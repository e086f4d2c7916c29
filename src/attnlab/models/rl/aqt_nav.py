"""The navigation Action Q-Transformer of seed 004's first thesis (AQT for indoor robot navigation).

Built on Itaya et al., "Visual Explanation with Action Query Transformer in Deep Reinforcement
Learning", arXiv:2306.13879 (official AQT: github machine-perception-robotics-group/
Action-Q-Transformer; see :mod:`attnlab.models.rl.aqt`). The thesis's variant:

1. The robot's semantically coloured view, 84x84, cut into 12x12 patches of 7x7; a linear patch
   embedding plus a learned positional encoding -> a transformer encoder (DETR post-norm layers).
2. Action queries from a query branch: ``Linear([one_hot(a), goal])`` for the four actions
   (stop, forward, turn left, turn right), the goal as (distance, sin, cos of its bearing).
3. A decoder (self-attention among the queries, cross-attention to the patches); a Q head
   (Linear -> ReLU -> Linear -> 1) applied to every query gives that action's Q-value.

Deviations: plain DQN Q-values (no noisy, dueling or distributional heads; the thesis trains
with DQN); the positional encoding is learned (the thesis does not fix it); dropout 0 by default.
The decoder's cross-attention per action is what the pictures show
(``capture(model)["decoder.layers.0.cross_attn"]``, (B, heads, 4, 144)).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.models._registry import register_model
from attnlab.models.rl.aqt_layers import Decoder, Encoder, patchify
from attnlab.models.rl.nav_obs import GOAL_FEATURES, PALETTE, palette_tensor, split_observation
from attnlab.models.rl.q_network import QNetworkOutput


@dataclass
class NavAQTConfig:
    num_actions: int = 4
    image_size: int = 84
    patch_size: int = 7  # 84 / 7 = 12 patches a side
    dim: int = 64
    num_heads: int = 4
    ffn_dim: int = 128
    encoder_depth: int = 1
    decoder_depth: int = 1
    head_hidden: int = 64
    dropout: float = 0.0
    palette: tuple[tuple[int, int, int], ...] = PALETTE

    @property
    def obs_dim(self) -> int:
        return self.image_size * self.image_size + GOAL_FEATURES

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


@register_model("aqt-nav", config=NavAQTConfig())
class NavActionQTransformer(nn.Module):
    """Navigation observations (B, 84 * 84 + 3) -> :class:`QNetworkOutput` (B, 4)."""

    palette: torch.Tensor

    def __init__(self, config: NavAQTConfig) -> None:
        super().__init__()
        self.config = c = config
        if min(c.num_actions, c.dim, c.num_heads, c.ffn_dim, c.head_hidden, c.patch_size) < 1:
            raise InputError(f"aqt-nav sizes must be >= 1, got {c}")
        if c.image_size % c.patch_size:
            raise InputError(f"aqt-nav: image_size {c.image_size} is not a multiple of patch {c.patch_size}")
        self.register_buffer("palette", palette_tensor(c.palette), persistent=False)
        self.patch_embed = nn.Linear(3 * c.patch_size**2, c.dim)
        self.pos_embed = nn.Parameter(torch.randn(c.grid * c.grid, c.dim) * 0.02)
        self.encoder = Encoder(c.dim, c.num_heads, c.ffn_dim, c.dropout, c.encoder_depth)
        self.query_branch = nn.Linear(c.num_actions + GOAL_FEATURES, c.dim)
        self.decoder = Decoder(c.dim, c.num_heads, c.ffn_dim, c.dropout, c.decoder_depth)
        self.q_head = nn.Sequential(nn.Linear(c.dim, c.head_hidden), nn.ReLU(), nn.Linear(c.head_hidden, 1))

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        c = self.config
        ids = torch.randint(0, len(c.palette), (batch_size, c.image_size**2)).float()
        return {"obs": torch.cat([ids, torch.rand(batch_size, GOAL_FEATURES)], dim=1)}

    def patches(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, grid^2, 3 * p * p), patches row-major, each flattened (c, y, x)."""
        return patchify(image, self.config.patch_size)

    def queries(self, goal: torch.Tensor) -> torch.Tensor:
        """(B, A, dim): the query branch on [one-hot(a), goal] for every action a."""
        B, A = goal.shape[0], self.config.num_actions
        eye = torch.eye(A, dtype=goal.dtype, device=goal.device).expand(B, A, A)  # (B, A, A)
        return self.query_branch(torch.cat([eye, goal[:, None, :].expand(B, A, -1)], dim=-1))

    def forward(self, obs: torch.Tensor) -> QNetworkOutput:
        image, goal = split_observation(obs, self.config.image_size, self.palette, "aqt-nav")
        memory = self.encoder(self.patch_embed(self.patches(image)) + self.pos_embed)  # (B, 144, dim)
        actions = self.decoder(self.queries(goal), memory)  # (B, A, dim)
        return QNetworkOutput(q_values=self.q_head(actions).squeeze(-1))  # (B, A)
