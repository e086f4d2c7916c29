"""The CNN DQN baseline of seed 004's navigation thesis: the Nature-DQN torso on the semantically
coloured 84x84 view, the goal concatenated to its features, an MLP to one Q-value per action.

Mnih et al., "Human-level control through deep reinforcement learning", Nature 2015 (torso and
512-wide layer, as CleanRL's ``dqn_atari.py``); the goal input (distance, sin, cos of the bearing)
is the thesis's addition. Deviation: the goal joins after the convolutions (the thesis does not
say where).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.models._registry import register_model
from attnlab.models.rl.aqt_layers import nature_torso
from attnlab.models.rl.nav_obs import GOAL_FEATURES, PALETTE, palette_tensor, split_observation
from attnlab.models.rl.q_network import QNetworkOutput


@dataclass
class NavCNNConfig:
    num_actions: int = 4
    image_size: int = 84
    hidden_dim: int = 512
    palette: tuple[tuple[int, int, int], ...] = PALETTE

    @property
    def obs_dim(self) -> int:
        return self.image_size * self.image_size + GOAL_FEATURES


@register_model("cnn_dqn-nav", config=NavCNNConfig())
class NavCNNQNetwork(nn.Module):
    """Navigation observations (B, 84 * 84 + 3) -> :class:`QNetworkOutput` (B, 4)."""

    palette: torch.Tensor

    def __init__(self, config: NavCNNConfig) -> None:
        super().__init__()
        self.config = c = config
        if min(c.num_actions, c.hidden_dim) < 1 or c.image_size != 84:
            raise InputError(f"cnn_dqn-nav needs 84x84 views and sizes >= 1, got {c}")
        self.register_buffer("palette", palette_tensor(c.palette), persistent=False)
        self.torso = nature_torso(3, 64)  # (B, 64, 7, 7)
        self.head = nn.Sequential(
            nn.Linear(64 * 7 * 7 + GOAL_FEATURES, c.hidden_dim),
            nn.ReLU(),
            nn.Linear(c.hidden_dim, c.num_actions),
        )

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        c = self.config
        ids = torch.randint(0, len(c.palette), (batch_size, c.image_size**2)).float()
        return {"obs": torch.cat([ids, torch.rand(batch_size, GOAL_FEATURES)], dim=1)}

    def forward(self, obs: torch.Tensor) -> QNetworkOutput:
        image, goal = split_observation(obs, self.config.image_size, self.palette, "cnn_dqn-nav")
        features = self.torso(image).flatten(1)  # (B, 3136)
        return QNetworkOutput(q_values=self.head(torch.cat([features, goal], dim=1)))  # (B, A)
