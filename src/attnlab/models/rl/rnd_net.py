"""RND's fixed random target and trained predictor (Burda et al. 2018, arXiv:1810.12894).

The input is transition-RND's queue of the last ``frames = n + 1`` normalised observations
(the seed thesis, section 3.1); ``frames = 1`` is the paper's RND on the newest observation.

- ``rnd-cnn``: the official release's networks (``policies/cnn_policy_param_matched.py``): target
  = 32 8x8/4, 64 4x4/2, 64 3x3/1 leaky-ReLU convolutions and a linear 512 feature layer; the
  predictor has the same convolutions, then 512 ReLU, 512 ReLU, linear 512. Input (B, frames, 84, 84).
- ``rnd-mlp``: the same shape of networks for flat observations (MiniGrid): target = two
  leaky-ReLU layers and a linear feature layer; the predictor has one more ReLU layer.

Orthogonal initialisation with gain sqrt(2), as the official code. The target's parameters are
frozen (``requires_grad = False``) from construction: it is never trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.models._registry import register_model


@dataclass
class RNDOutput:
    predicted: torch.Tensor  # (B, feature_dim) the predictor's features
    target: torch.Tensor  # (B, feature_dim) the fixed random network's features, no gradient


def _orthogonal(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.Linear | nn.Conv2d):
            nn.init.orthogonal_(layer.weight, math.sqrt(2))
            nn.init.zeros_(layer.bias)  # type: ignore[arg-type]


def _convs(frames: int) -> list[nn.Module]:
    return [
        nn.Conv2d(frames, 32, 8, stride=4),
        nn.LeakyReLU(),
        nn.Conv2d(32, 64, 4, stride=2),
        nn.LeakyReLU(),
        nn.Conv2d(64, 64, 3, stride=1),
        nn.LeakyReLU(),
        nn.Flatten(),  # (B, 64 * 7 * 7)
    ]


@dataclass
class RNDCNNConfig:
    frames: int = 1  # n + 1 queued 84x84 frames
    feature_dim: int = 512


@register_model("rnd-cnn", config=RNDCNNConfig())
class RNDCNN(nn.Module):
    """Queues (B, frames, 84, 84) normalised float -> :class:`RNDOutput`."""

    def __init__(self, config: RNDCNNConfig) -> None:
        super().__init__()
        self.config = c = config
        if min(c.frames, c.feature_dim) < 1:
            raise InputError(f"rnd-cnn sizes must be >= 1, got {c}")
        flat = 64 * 7 * 7
        self.target = nn.Sequential(*_convs(c.frames), nn.Linear(flat, c.feature_dim))
        self.predictor = nn.Sequential(
            *_convs(c.frames),
            nn.Linear(flat, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, c.feature_dim),
        )
        _orthogonal(self)
        self.target.requires_grad_(False)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        return {"queue": torch.randn(batch_size, self.config.frames, 84, 84)}

    def forward(self, queue: torch.Tensor) -> RNDOutput:
        if queue.dim() != 4 or tuple(queue.shape[1:]) != (self.config.frames, 84, 84):
            raise InputError(f"queue must be (B, {self.config.frames}, 84, 84), got {tuple(queue.shape)}")
        return RNDOutput(predicted=self.predictor(queue), target=self.target(queue))


@dataclass
class RNDMLPConfig:
    obs_dim: int = 980  # one flat observation (MiniGrid's one-hot view)
    frames: int = 1  # n + 1 queued observations
    hidden_dim: int = 256
    feature_dim: int = 128


@register_model("rnd-mlp", config=RNDMLPConfig())
class RNDMLP(nn.Module):
    """Queues (B, frames, obs_dim) normalised float -> :class:`RNDOutput`."""

    def __init__(self, config: RNDMLPConfig) -> None:
        super().__init__()
        self.config = c = config
        if min(c.obs_dim, c.frames, c.hidden_dim, c.feature_dim) < 1:
            raise InputError(f"rnd-mlp sizes must be >= 1, got {c}")
        width = c.obs_dim * c.frames
        self.target = nn.Sequential(
            nn.Flatten(),  # (B, frames * obs_dim)
            nn.Linear(width, c.hidden_dim),
            nn.LeakyReLU(),
            nn.Linear(c.hidden_dim, c.hidden_dim),
            nn.LeakyReLU(),
            nn.Linear(c.hidden_dim, c.feature_dim),
        )
        self.predictor = nn.Sequential(
            nn.Flatten(),  # (B, frames * obs_dim)
            nn.Linear(width, c.hidden_dim),
            nn.LeakyReLU(),
            nn.Linear(c.hidden_dim, c.hidden_dim),
            nn.ReLU(),
            nn.Linear(c.hidden_dim, c.hidden_dim),
            nn.ReLU(),
            nn.Linear(c.hidden_dim, c.feature_dim),
        )
        _orthogonal(self)
        self.target.requires_grad_(False)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        return {"queue": torch.randn(batch_size, self.config.frames, self.config.obs_dim)}

    def forward(self, queue: torch.Tensor) -> RNDOutput:
        if queue.dim() != 3 or tuple(queue.shape[1:]) != (self.config.frames, self.config.obs_dim):
            raise InputError(
                f"queue must be (B, {self.config.frames}, {self.config.obs_dim}), got {tuple(queue.shape)}"
            )
        return RNDOutput(predicted=self.predictor(queue), target=self.target(queue))
