"""The navigation simulator's flat observation, as the navigation Q-networks read it.

``attnlab.rl.navigation`` returns float32 (B, size * size + 3): the semantic class id of every
pixel (row-major) and the target as (distance / map_size, sin, cos of its bearing). The networks
see the semantically coloured image (the theses' input), the ids mapped to ``palette`` colours.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    return coloured(obs, size, palette), obs[:, size * size :]


def coloured(obs: torch.Tensor, size: int, palette: torch.Tensor) -> torch.Tensor:
    """The leading size^2 entries of (B, D) observations, class ids, as images (B, 3, size, size)."""
    ids = obs[:, : size * size].round().long().clamp(0, palette.shape[0] - 1)  # (B, H*W)
    return palette[ids].view(obs.shape[0], size, size, 3).permute(0, 3, 1, 2)  # (B, 3, H, W)


# -- sketch mode -----------------------------------------------------------------------------------
# Between the class ids and the goal, sketch mode's observation holds the robot's pose (x / map_size,
# y / map_size, sin, cos of its heading), the K waypoints (x, y) / map_size and the index of the
# next step's waypoint (attnlab.rl.navigation.NavigationBatch.sketch_features).
POSE_FEATURES = 4


def sketch_obs_dim(size: int, waypoints: int) -> int:
    return size * size + POSE_FEATURES + 2 * waypoints + 1 + GOAL_FEATURES


@dataclass
class SketchObservation:
    image: torch.Tensor  # (B, 3, size, size) the coloured view in [0, 1]
    pose: torch.Tensor  # (B, 4) x, y / map_size, sin, cos of the heading
    waypoints: torch.Tensor  # (B, K, 2) / map_size
    index: torch.Tensor  # (B,) int64: the next step's waypoint


def split_sketch_observation(
    obs: torch.Tensor, size: int, waypoints: int, palette: torch.Tensor, model: str
) -> SketchObservation:
    """Flat sketch-mode observations (B, sketch_obs_dim) -> their parts; the goal features (the
    last 3) are left out: the sketch networks see the sketch, not the bearing of the next waypoint."""
    dim, pixels = sketch_obs_dim(size, waypoints), size * size
    if obs.dim() != 2 or obs.shape[1] != dim or not obs.is_floating_point():
        raise InputError(
            f"{model} takes float sketch navigation observations (B, {dim}) = {size}x{size} class ids + "
            f"{POSE_FEATURES} pose + {waypoints}x2 waypoints + 1 index + {GOAL_FEATURES} goal features, "
            f"got {obs.dtype} {tuple(obs.shape)}"
        )
    B = obs.shape[0]
    image = coloured(obs, size, palette)  # (B, 3, H, W)
    pose = obs[:, pixels : pixels + POSE_FEATURES]
    points = obs[:, pixels + POSE_FEATURES : pixels + POSE_FEATURES + 2 * waypoints].view(B, waypoints, 2)
    index = obs[:, pixels + POSE_FEATURES + 2 * waypoints].round().long().clamp(0, waypoints - 1)  # (B,)
    return SketchObservation(image, pose, points, index)


def example_sketch_observation(batch_size: int, size: int, waypoints: int, classes: int) -> torch.Tensor:
    """Valid random sketch-mode observations (B, sketch_obs_dim), for the registry-wide tests."""
    ids = torch.randint(0, classes, (batch_size, size * size)).float()
    angle = torch.rand(batch_size, 1) * 2 * torch.pi
    pose = torch.cat([torch.rand(batch_size, 2), angle.sin(), angle.cos()], dim=1)  # (B, 4)
    points = torch.rand(batch_size, 2 * waypoints)  # (B, 2K)
    index = torch.randint(0, waypoints, (batch_size, 1)).float()
    goal = torch.rand(batch_size, GOAL_FEATURES)
    return torch.cat([ids, pose, points, index, goal], dim=1)


def robot_frame(points: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """Points (B, K, 2) in map coordinates / map_size as the robot at ``pose`` (B, 4) sees them:
    (ahead, to the left) of it, in the same units."""
    d = points - pose[:, None, :2]  # (B, K, 2)
    sin, cos = pose[:, None, 2], pose[:, None, 3]  # (B, 1)
    return torch.stack([cos * d[..., 0] + sin * d[..., 1], cos * d[..., 1] - sin * d[..., 0]], dim=-1)
