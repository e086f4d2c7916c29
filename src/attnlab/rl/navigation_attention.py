"""Where the navigation AQT looks, per action: the decoder's cross-attention of each action query
over the 12x12 patches of the view (heads averaged, as the official AQT's pictures), pictures of an
episode with all four actions side by side (the chosen one framed, Q-values printed), and the
theses' check of meaning that moving the goal moves the attention.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.explain.capture import capture
from attnlab.rl.navigation import ACTION_NAMES, NavigationEnv

CROSS = "decoder.layers.0.cross_attn"


def action_attention(model: nn.Module, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One observation (obs_dim,) -> per-action maps (A, grid, grid) (heads averaged) and Q-values (A,)."""
    grid = getattr(getattr(model, "config", None), "grid", None)
    if grid is None:
        raise InputError(f"action attention needs an aqt-nav model, got {type(model).__name__}")
    model.eval()
    with torch.no_grad(), capture(model, layers=[CROSS]) as rec:
        q = model(torch.as_tensor(obs, dtype=torch.float32)[None]).q_values[0]
    maps = rec[CROSS][0].mean(dim=0)  # (A, grid^2): heads averaged
    return maps.view(-1, grid, grid).numpy(), q.numpy()


def with_goal_bearing(obs: np.ndarray, bearing: float) -> np.ndarray:
    """The same view with the goal moved to ``bearing`` (radians, left positive), same distance."""
    out = obs.copy()
    out[-2:] = [math.sin(bearing), math.cos(bearing)]
    return out


def attention_centre_x(maps: np.ndarray) -> np.ndarray:
    """Horizontal centre of mass of each map (A, g, g) in [0, 1] (0: left edge of the view)."""
    g = maps.shape[-1]
    cols = (np.arange(g) + 0.5) / g
    return (maps.sum(axis=1) * cols).sum(axis=-1) / maps.sum(axis=(1, 2))


def episode_figure(model: nn.Module, env: NavigationEnv, path: Path, *, seed: int, frames: int = 4) -> Path:
    """Greedy steps of one episode: per row the view and the four actions' attention over it."""
    obs, _ = env.reset(seed=seed)
    fig, axes = plt.subplots(frames, 5, figsize=(12.5, 2.6 * frames), squeeze=False)
    for row in range(frames):
        maps, q = action_attention(model, obs)
        chosen = int(q.argmax())
        view = env.render()
        axes[row, 0].imshow(view)
        axes[row, 0].set_title(f"step {row}: view", fontsize=9)
        for a, name in enumerate(ACTION_NAMES):
            ax = axes[row, a + 1]
            ax.imshow(view)
            ax.imshow(maps[a], cmap="jet", alpha=0.5, extent=(0, view.shape[1], view.shape[0], 0))
            ax.set_title(f"{name}  Q={q[a]:.2f}" + ("  (chosen)" if a == chosen else ""), fontsize=9)
            if a == chosen:
                for spine in ax.spines.values():
                    spine.set_edgecolor("red")
                    spine.set_linewidth(3)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
        obs, _, terminated, truncated, _ = env.step(chosen)
        if terminated or truncated:
            break
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
