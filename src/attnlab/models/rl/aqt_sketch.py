"""The sketch-instructed Action Q-Transformer of seed 004's second thesis (Honda, robot motion from
sketch instructions by deep reinforcement learning): AQT (Itaya et al., arXiv:2306.13879; official
code github machine-perception-robotics-group/Action-Q-Transformer) with an Instruction Phase in front.

1. Instruction Phase (:mod:`attnlab.models.rl.instruction_phase`): the sketch's waypoints, as the
   robot sees them -> linear -> positional encoding -> Transformer encoder -> one instruction
   feature per waypoint; a step's feature is that of its waypoint (the simulator spreads the
   waypoints over the episode).
2. Control Phase: the semantically coloured view cut into patches, a linear patch embedding plus a
   learned positional encoding -> a Transformer encoder (keys and values of the decoder). One action
   query per action: ``Linear([one_hot(a), pose, instruction feature])``, pose = the robot's position
   and heading (x, y / map_size, sin, cos). A decoder (self-attention among the queries,
   cross-attention to the patches, DETR post-norm layers) and a Q head (Linear -> ReLU -> Linear -> 1)
   on every query gives that action's Q-value.

The decoder's cross-attention per action is ``capture(model)["decoder.layers.0.cross_attn"]``
(B, heads, 4, patches); the Instruction Phase's self-attention among the waypoints is
``capture(model)["instruction.encoder.layers.0.self_attn"]`` (B, heads, K, K).

Deviations: the thesis's view is 128x128 (``image_size``; 84 by default so that a CPU run takes
minutes, 128 with ``patch_size`` 8 is the thesis's); it reads as a view from above with the robot in
it, ours is the simulator's first-person view. Plain DQN Q-values (no noisy, dueling or distributional
heads: the thesis trains with DQN). Sizes (width, heads, depths) are not in the thesis: the aqt-nav
ones. The pose is in map coordinates divided by the map's side; the Instruction Phase sees the sketch
in the robot's frame (the thesis does not say; see :mod:`attnlab.models.rl.instruction_phase`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.models._registry import register_model
from attnlab.models.rl.aqt_layers import Decoder, Encoder, patchify
from attnlab.models.rl.instruction_phase import InstructionPhase, step_feature
from attnlab.models.rl.nav_obs import (
    PALETTE,
    POSE_FEATURES,
    example_sketch_observation,
    palette_tensor,
    robot_frame,
    sketch_obs_dim,
    split_sketch_observation,
)
from attnlab.models.rl.q_network import QNetworkOutput


@dataclass
class SketchAQTConfig:
    num_actions: int = 4
    image_size: int = 84  # the thesis's is 128 (with patch_size 8: 16x16 patches)
    patch_size: int = 7  # 84 / 7 = 12 patches a side
    waypoints: int = 8  # K, the sketch's length (attnlab/NavSketch-v0 draws 8)
    dim: int = 64
    num_heads: int = 4
    ffn_dim: int = 128
    instruction_depth: int = 1
    encoder_depth: int = 1
    decoder_depth: int = 1
    head_hidden: int = 64
    dropout: float = 0.0
    palette: tuple[tuple[int, int, int], ...] = PALETTE

    @property
    def obs_dim(self) -> int:
        return sketch_obs_dim(self.image_size, self.waypoints)

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


@register_model("aqt_sketch-nav", config=SketchAQTConfig())
class SketchActionQTransformer(nn.Module):
    """Sketch-mode navigation observations (B, obs_dim) -> :class:`QNetworkOutput` (B, 4)."""

    palette: torch.Tensor

    def __init__(self, config: SketchAQTConfig) -> None:
        super().__init__()
        self.config = c = config
        sizes = (c.num_actions, c.dim, c.num_heads, c.ffn_dim, c.head_hidden, c.patch_size, c.waypoints)
        if min(sizes) < 1 or min(c.instruction_depth, c.encoder_depth, c.decoder_depth) < 1:
            raise InputError(f"aqt_sketch-nav sizes and depths must be >= 1, got {c}")
        if c.image_size % c.patch_size:
            raise InputError(f"aqt_sketch-nav: image_size {c.image_size} is not a multiple of {c.patch_size}")
        self.register_buffer("palette", palette_tensor(c.palette), persistent=False)
        self.instruction = InstructionPhase(
            c.waypoints, c.dim, c.num_heads, c.ffn_dim, c.dropout, c.instruction_depth
        )
        self.patch_embed = nn.Linear(3 * c.patch_size**2, c.dim)
        self.pos_embed = nn.Parameter(torch.randn(c.grid * c.grid, c.dim) * 0.02)
        self.encoder = Encoder(c.dim, c.num_heads, c.ffn_dim, c.dropout, c.encoder_depth)
        self.query_branch = nn.Linear(c.num_actions + POSE_FEATURES + c.dim, c.dim)
        self.decoder = Decoder(c.dim, c.num_heads, c.ffn_dim, c.dropout, c.decoder_depth)
        self.q_head = nn.Sequential(nn.Linear(c.dim, c.head_hidden), nn.ReLU(), nn.Linear(c.head_hidden, 1))

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        c = self.config
        return {"obs": example_sketch_observation(batch_size, c.image_size, c.waypoints, len(c.palette))}

    def queries(self, pose: torch.Tensor, instruction: torch.Tensor) -> torch.Tensor:
        """(B, A, dim): the query branch on [one_hot(a), pose (B, 4), the step's instruction (B, dim)]."""
        B, A = pose.shape[0], self.config.num_actions
        eye = torch.eye(A, dtype=pose.dtype, device=pose.device).expand(B, A, A)  # (B, A, A)
        state = torch.cat([pose, instruction], dim=1)[:, None, :].expand(B, A, -1)  # (B, A, 4 + dim)
        return self.query_branch(torch.cat([eye, state], dim=-1))

    def forward(self, obs: torch.Tensor) -> QNetworkOutput:
        c = self.config
        view = split_sketch_observation(obs, c.image_size, c.waypoints, self.palette, "aqt_sketch-nav")
        sketch = robot_frame(view.waypoints, view.pose)  # (B, K, 2): the sketch as the robot sees it
        instruction = step_feature(self.instruction(sketch), view.index)  # (B, dim)
        patches = self.patch_embed(patchify(view.image, c.patch_size))  # (B, grid^2, dim)
        memory = self.encoder(patches + self.pos_embed)  # (B, grid^2, dim)
        actions = self.decoder(self.queries(view.pose, instruction), memory)  # (B, A, dim)
        return QNetworkOutput(q_values=self.q_head(actions).squeeze(-1))  # (B, A)
