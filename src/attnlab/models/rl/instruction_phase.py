"""The Instruction Phase of seed 004's second thesis (sketch-instructed AQT), shared by the sketch AQT
(:mod:`attnlab.models.rl.aqt_sketch`) and its CNN baseline (:mod:`attnlab.models.rl.cnn_sketch`), which
the thesis gives the same Instruction Phase.

The sketch as a sequence of waypoints in drawing order (B, K, 2) -> ``Linear(2 -> dim)`` -> plus a
sine-cosine positional encoding of each waypoint's place in the sequence -> a Transformer encoder
(DETR post-norm layers: self-attention among the waypoints) -> one instruction feature per waypoint
(B, K, dim). The feature of a step is that of the step's waypoint.

The networks give it the sketch as the robot sees it at the step (each waypoint ahead of and to the
left of the robot, :func:`attnlab.models.rl.nav_obs.robot_frame`). The thesis does not say in which
frame its Sketch Sequence is; with the sketch in map coordinates neither network learnt even to
imitate the scripted straight-to-waypoint policy in 1,200 supervised steps (41% of the actions,
the majority class), in the robot's frame both reached 88-93% (docs/rl_navigation.md).

Deviations: the thesis fixes neither the positional encoding (we take Vaswani et al.'s sinusoids,
arXiv:1706.03762) nor the depth (one layer by default, as the AQT's encoder).
"""

from __future__ import annotations

import torch
from torch import nn

from attnlab.layers.pos_embed import sincos_pos_embed_1d
from attnlab.models.rl.aqt_layers import Encoder


class InstructionPhase(nn.Module):
    """Waypoints (B, K, 2) -> instruction features (B, K, dim)."""

    pos: torch.Tensor

    def __init__(self, waypoints: int, dim: int, num_heads: int, ffn_dim: int, dropout: float, depth: int):
        super().__init__()
        self.embed = nn.Linear(2, dim)
        self.register_buffer("pos", sincos_pos_embed_1d(waypoints, dim), persistent=False)  # (K, dim)
        self.encoder = Encoder(dim, num_heads, ffn_dim, dropout, depth)

    def forward(self, waypoints: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.embed(waypoints) + self.pos)  # (B, K, dim)


def step_feature(features: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The instruction feature (B, dim) of each row's waypoint ``index`` (B,) out of (B, K, dim)."""
    return features[torch.arange(features.shape[0], device=features.device), index]
