"""The navigation simulator's flat observation, as the navigation Q-networks read it.

``attnlab.rl.navigation`` returns float32 (B, size * size + 3): the semantic class id of every
pixel (row-major) and the target as (distance / map_size, sin, cos of its bearing). The networks
see the semantically coloured image (the theses' input), the ids mapped to ``palette`` colours.
"""

from __future__ import annotations

import torch

from attnlab.errors import InputError

GOAL_FEATURES = 3
# the simulator's semantic colours (ceiling, floor, wall, furniture, person), RGB
PALETTE: tuple[tuple[int, int, int], ...] = (
    (30, 30, 30),
    (128, 128, 128),
    (70, 110, 230),
    (60, 180, 75),
    (230, 50, 50),
)


def palette_tensor(palette: tuple[tuple[int, int, int], ...]) -> torch.Tensor:
    return torch.tensor(palette, dtype=torch.float32) / 255.0  # (K, 3)


def split_observation(
    obs: torch.Tensor, size: int, palette: torch.Tensor, model: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat observations (B, size^2 + 3) -> coloured images (B, 3, size, size) in [0, 1] and goals (B, 3)."""
    dim = size * size + GOAL_FEATURES
    if obs.dim() != 2 or obs.shape[1] != dim or not obs.is_floating_point():
        raise InputError(
            f"{model} takes float navigation observations (B, {dim}) = {size}x{size} class ids + "
            f"{GOAL_FEATURES} goal features, got {obs.dtype} {tuple(obs.shape)}"
        )
    ids = obs[:, : size * size].round().long().clamp(0, palette.shape[0] - 1)  # (B, H*W)
    image = palette[ids].view(obs.shape[0], size, size, 3).permute(0, 3, 1, 2)  # (B, 3, H, W)
    return image, obs[:, size * size :]
