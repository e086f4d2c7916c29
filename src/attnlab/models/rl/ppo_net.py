"""PPO's actor-critic networks, with a second value head for RND's intrinsic return.

Schulman et al., "Proximal Policy Optimization Algorithms", arXiv:1707.06347; Burda et al.,
"Exploration by Random Network Distillation", arXiv:1810.12894.

- ``ppo-mlp``: vector observations (MiniGrid's 7x7 view, one-hot per cell) -> ``depth``
  tanh layers (CleanRL's ``ppo.py`` MLP) -> policy logits, extrinsic value, and with
  ``intrinsic_head`` an intrinsic value.
- ``ppo-cnn``: a stack of 84x84 grey frames (uint8) -> /255 -> the RND paper's policy CNN
  (32 8x8/4, 64 4x4/2, 64 3x3/1, ReLU; 256 then 448 units) -> policy logits; each value head
  reads the trunk plus one more 448-unit ReLU layer added back to it (CleanRL's
  ``ppo_rnd_envpool.py`` layout of the official CnnGruPolicy without its GRU).

Orthogonal initialisation (gain sqrt(2) in the body, 0.01 for the logits, 1 for the values) as
in CleanRL's PPO. Deviation from the official RND policy: no recurrent (GRU) layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.models._registry import register_model


@dataclass
class ActorCriticOutput:
    logits: torch.Tensor  # (B, num_actions) unnormalised log-probabilities
    value_ext: torch.Tensor  # (B,) extrinsic value
    value_int: torch.Tensor | None  # (B,) intrinsic value, None without the intrinsic head


def _init(layer: nn.Module, gain: float) -> nn.Module:
    if isinstance(layer, nn.Linear | nn.Conv2d):
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)  # type: ignore[arg-type]
    return layer


@dataclass
class ActorCriticMLPConfig:
    obs_dim: int = 980  # length of the flat observation (MiniGrid: 7 * 7 one-hot cells of 20)
    num_actions: int = 7
    hidden_dim: int = 128
    depth: int = 2
    intrinsic_head: bool = False  # a second value head for RND's intrinsic return


@register_model("ppo-mlp", config=ActorCriticMLPConfig())
class ActorCriticMLP(nn.Module):
    """Observations (B, obs_dim) float -> :class:`ActorCriticOutput`."""

    def __init__(self, config: ActorCriticMLPConfig) -> None:
        super().__init__()
        self.config = c = config
        if min(c.obs_dim, c.num_actions, c.hidden_dim, c.depth) < 1:
            raise InputError(f"ppo-mlp sizes must be >= 1, got {c}")
        layers: list[nn.Module] = []
        width = c.obs_dim
        for _ in range(c.depth):
            layers += [_init(nn.Linear(width, c.hidden_dim), math.sqrt(2)), nn.Tanh()]
            width = c.hidden_dim
        self.body = nn.Sequential(*layers)
        self.policy = _init(nn.Linear(width, c.num_actions), 0.01)
        self.value_ext = _init(nn.Linear(width, 1), 1.0)
        self.value_int = _init(nn.Linear(width, 1), 1.0) if c.intrinsic_head else None

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        return {"obs": torch.randn(batch_size, self.config.obs_dim)}

    def forward(self, obs: torch.Tensor) -> ActorCriticOutput:
        if obs.dim() != 2 or obs.shape[1] != self.config.obs_dim or not obs.is_floating_point():
            raise InputError(
                f"obs must be float (B, {self.config.obs_dim}), got {obs.dtype} {tuple(obs.shape)}"
            )
        h = self.body(obs)  # (B, hidden_dim)
        value_int = self.value_int(h).squeeze(1) if self.value_int is not None else None
        return ActorCriticOutput(self.policy(h), self.value_ext(h).squeeze(1), value_int)


@dataclass
class ActorCriticCNNConfig:
    frames: int = 4  # stacked 84x84 grey frames
    num_actions: int = 18
    intrinsic_head: bool = False


@register_model("ppo-cnn", config=ActorCriticCNNConfig())
class ActorCriticCNN(nn.Module):
    """Frames (B, frames, 84, 84) uint8 or float in [0, 255] -> :class:`ActorCriticOutput`."""

    def __init__(self, config: ActorCriticCNNConfig) -> None:
        super().__init__()
        self.config = c = config
        if min(c.frames, c.num_actions) < 1:
            raise InputError(f"ppo-cnn sizes must be >= 1, got {c}")
        g = math.sqrt(2)
        self.trunk = nn.Sequential(
            _init(nn.Conv2d(c.frames, 32, 8, stride=4), g),
            nn.ReLU(),
            _init(nn.Conv2d(32, 64, 4, stride=2), g),
            nn.ReLU(),
            _init(nn.Conv2d(64, 64, 3, stride=1), g),
            nn.ReLU(),
            nn.Flatten(),  # (B, 64 * 7 * 7)
            _init(nn.Linear(64 * 7 * 7, 256), g),
            nn.ReLU(),
            _init(nn.Linear(256, 448), g),
            nn.ReLU(),
        )
        self.value_extra = nn.Sequential(_init(nn.Linear(448, 448), 0.1), nn.ReLU())
        self.policy = _init(nn.Linear(448, c.num_actions), 0.01)
        self.value_ext = _init(nn.Linear(448, 1), 0.01)
        self.value_int = _init(nn.Linear(448, 1), 0.01) if c.intrinsic_head else None

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        return {"obs": torch.randint(0, 256, (batch_size, self.config.frames, 84, 84), dtype=torch.uint8)}

    def forward(self, obs: torch.Tensor) -> ActorCriticOutput:
        if obs.dim() != 4 or tuple(obs.shape[1:]) != (self.config.frames, 84, 84):
            raise InputError(f"obs must be (B, {self.config.frames}, 84, 84), got {tuple(obs.shape)}")
        h = self.trunk(obs.float() / 255.0)  # (B, 448)
        hv = h + self.value_extra(h)  # (B, 448)
        value_int = self.value_int(hv).squeeze(1) if self.value_int is not None else None
        return ActorCriticOutput(self.policy(h), self.value_ext(hv).squeeze(1), value_int)
