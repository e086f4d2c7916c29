"""Where the Atari AQT looks, per action (the AQT paper's pictures): the decoder's cross-attention of
each action query over the 7x7 grid of the convolutional features, heads averaged, drawn over the
newest frame, for a few steps of one episode; the chosen action framed, Q-values in the titles.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from attnlab.explain.capture import capture

CROSS = "decoder.layers.0.cross_attn"


def frame_attention(model: nn.Module, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One stack of frames (C, 84, 84) uint8 -> per-action maps (A, 7, 7), heads averaged, and Q (A,)."""
    model.eval()
    x = torch.as_tensor(frames, dtype=torch.float32)[None] / 255.0  # (1, C, 84, 84)
    with torch.no_grad(), capture(model, layers=[CROSS]) as rec:
        q = model(x).q_values[0]
    maps = rec[CROSS][0].mean(dim=0)  # (A, 49): heads averaged
    side = math.isqrt(maps.shape[-1])  # the square grid of the torso
    return maps.view(-1, side, side).numpy(), q.numpy()


def episode_figure(
    model: nn.Module,
    env: Any,
    policy: Callable[[np.ndarray], int],
    path: Path,
    *,
    seed: int,
    rows: int = 4,
    every: int = 25,
) -> Path:
    """Every ``every``-th step of one episode (``policy`` acting), ``rows`` of them: the newest frame,
    then each action's attention over it."""
    names = env.unwrapped.get_action_meanings()
    obs, _ = env.reset(seed=seed)
    fig, axes = plt.subplots(
        rows, len(names) + 1, figsize=(2.3 * (len(names) + 1), 2.5 * rows), squeeze=False
    )
    step, row, done = 0, 0, False
    while row < rows and not done:
        if step % every == 0:
            draw_row(axes[row], obs, *frame_attention(model, obs), names, step)
            row += 1
        obs, _, terminated, truncated, _ = env.step(policy(obs))
        step, done = step + 1, terminated or truncated
    for ax in axes[row:].flat:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def draw_row(
    axes: Any, obs: np.ndarray, maps: np.ndarray, q: np.ndarray, names: list[str], step: int
) -> None:
    """The newest frame and one panel per action (the greedy one framed in red)."""
    frame, chosen = obs[-1], int(q.argmax())
    axes[0].imshow(frame, cmap="gray")
    axes[0].set_title(f"step {step}", fontsize=9)
    for a, name in enumerate(names):
        ax = axes[a + 1]
        ax.imshow(frame, cmap="gray")
        ax.imshow(maps[a], cmap="jet", alpha=0.5, extent=(0, frame.shape[1], frame.shape[0], 0))
        ax.set_title(f"{name}  Q={q[a]:.2f}", fontsize=9)
        if a == chosen:
            for spine in ax.spines.values():
                spine.set_edgecolor("red")
                spine.set_linewidth(3)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
