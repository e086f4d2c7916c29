"""The CNN baseline of seed 004's sketch-instructed navigation thesis: the same Instruction Phase as
the sketch AQT (:mod:`attnlab.models.rl.instruction_phase`) and a Control Phase of three parts, as
the thesis describes it: an Image-Feature extractor (the Nature-DQN convolutions, Mnih et al., Nature
2015, on the semantically coloured view), a Position-Head (the robot's position and heading ->
features) and a Q-Head that gives one Q-value per action from the image features, the
Position-Head's output and the step's instruction feature, concatenated.

Deviations: the thesis gives no widths: the Position-Head is ``Linear(4, 64) - ReLU``, the Q-Head
``Linear(-, 512) - ReLU - Linear(512, 4)`` (the Nature DQN's); the view is 84x84 by default (the
thesis's 128x128 with ``image_size: 128``); the Instruction Phase sees the sketch in the robot's
frame, as the sketch AQT's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.models._registry import register_model
from attnlab.models.rl.aqt_layers import nature_torso, torso_side
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
class SketchCNNConfig:
    num_actions: int = 4
    image_size: int = 84  # the thesis's is 128
    waypoints: int = 8  # K, the sketch's length (attnlab/NavSketch-v0 draws 8)
    dim: int = 64  # the Instruction Phase: width, heads, FFN and depth as the sketch AQT's
    num_heads: int = 4
    ffn_dim: int = 128
    instruction_depth: int = 1
    dropout: float = 0.0
    pose_hidden: int = 64  # the Position-Head's width
    hidden_dim: int = 512  # the Q-Head's width
    palette: tuple[tuple[int, int, int], ...] = PALETTE

    @property
    def obs_dim(self) -> int:
        return sketch_obs_dim(self.image_size, self.waypoints)


@register_model("cnn_sketch-nav", config=SketchCNNConfig())
class SketchCNNQNetwork(nn.Module):
    """Sketch-mode navigation observations (B, obs_dim) -> :class:`QNetworkOutput` (B, 4)."""

    palette: torch.Tensor

    def __init__(self, config: SketchCNNConfig) -> None:
        super().__init__()
        self.config = c = config
        sizes = (c.num_actions, c.waypoints, c.dim, c.num_heads, c.ffn_dim, c.instruction_depth)
        if min(*sizes, c.pose_hidden, c.hidden_dim) < 1 or c.image_size < 36:
            raise InputError(f"cnn_sketch-nav needs views of at least 36x36 and sizes >= 1, got {c}")
        self.register_buffer("palette", palette_tensor(c.palette), persistent=False)
        self.instruction = InstructionPhase(
            c.waypoints, c.dim, c.num_heads, c.ffn_dim, c.dropout, c.instruction_depth
        )
        self.image_features = nature_torso(3, 64)  # (B, 64, s, s), s = 7 for 84
        self.position_head = nn.Sequential(nn.Linear(POSE_FEATURES, c.pose_hidden), nn.ReLU())
        features = 64 * torso_side(c.image_size) ** 2 + c.pose_hidden + c.dim
        self.q_head = nn.Sequential(
            nn.Linear(features, c.hidden_dim), nn.ReLU(), nn.Linear(c.hidden_dim, c.num_actions)
        )

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        c = self.config
        return {"obs": example_sketch_observation(batch_size, c.image_size, c.waypoints, len(c.palette))}

    def forward(self, obs: torch.Tensor) -> QNetworkOutput:
        c = self.config
        view = split_sketch_observation(obs, c.image_size, c.waypoints, self.palette, "cnn_sketch-nav")
        sketch = robot_frame(view.waypoints, view.pose)  # (B, K, 2): the sketch as the robot sees it
        instruction = step_feature(self.instruction(sketch), view.index)  # (B, dim)
        image = self.image_features(view.image).flatten(1)  # (B, 64 * s * s)
        state = torch.cat([image, self.position_head(view.pose), instruction], dim=1)
        return QNetworkOutput(q_values=self.q_head(state))  # (B, A)
