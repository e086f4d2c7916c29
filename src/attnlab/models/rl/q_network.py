"""The Q-network of DQN for vector observations.

Mnih et al., "Human-level control through deep reinforcement learning", Nature 2015; the
MLP for classic-control tasks follows CleanRL's ``dqn.py``
(https://github.com/vwxyzjn/cleanrl/blob/master/cleanrl/dqn.py): observations -> ``depth``
ReLU layers of ``hidden_dim`` -> one Q-value per discrete action. PyTorch's default
``nn.Linear`` initialisation, as there. Deviation: CleanRL's MLP is 120-84 wide; ours is
``hidden_dim`` wide throughout (128 by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.models._registry import register_model


@dataclass
class QNetworkConfig:
    obs_dim: int = 4  # length of the (flat) observation vector
    num_actions: int = 2  # size of the discrete action space
    hidden_dim: int = 128
    depth: int = 2  # hidden layers


@dataclass
class QNetworkOutput:
    q_values: torch.Tensor  # (B, num_actions) Q(s, a) for every action


@register_model("q-mlp", config=QNetworkConfig())
class QNetwork(nn.Module):
    """Observations (B, obs_dim) float -> :class:`QNetworkOutput`."""

    def __init__(self, config: QNetworkConfig) -> None:
        super().__init__()
        self.config = c = config
        if min(c.obs_dim, c.num_actions, c.hidden_dim, c.depth) < 1:
            raise InputError(f"q-mlp sizes must be >= 1, got {c}")
        layers: list[nn.Module] = []
        width = c.obs_dim
        for _ in range(c.depth):
            layers += [nn.Linear(width, c.hidden_dim), nn.ReLU()]
            width = c.hidden_dim
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, c.num_actions)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        """Valid inputs for ``forward`` (used by the registry-wide tests)."""
        return {"obs": torch.randn(batch_size, self.config.obs_dim)}

    def forward(self, obs: torch.Tensor) -> QNetworkOutput:
        if obs.dim() != 2 or obs.shape[1] != self.config.obs_dim or not obs.is_floating_point():
            raise InputError(
                f"obs must be float (B, {self.config.obs_dim}), got {obs.dtype} {tuple(obs.shape)}"
            )
        return QNetworkOutput(q_values=self.head(self.body(obs)))  # (B, num_actions)
