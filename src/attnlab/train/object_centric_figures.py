"""Pictures of an object-centric decomposition: a PNG grid and an animated GIF."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch


def _rgb(frames: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) in [0, 1] -> (T, H, W, 3) float for imshow."""
    return frames.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def slot_colours(num_slots: int) -> torch.Tensor:
    """(K, 3) distinct colours (tab10, then hsv) for argmax slot maps."""
    cmap = plt.get_cmap("tab10" if num_slots <= 10 else "hsv", num_slots)
    return torch.tensor([cmap(k)[:3] for k in range(num_slots)], dtype=torch.float32)


def plot_decomposition(
    video: torch.Tensor, recon: torch.Tensor, pred: torch.Tensor | None, masks: torch.Tensor, path: Path
) -> Path:
    """Rows: frames, reconstruction, prediction of the next frame, then one row per slot mask.

    ``video``/``recon``/``pred`` (T, 3, H, W); ``masks`` (T, K, H, W).
    """
    rows = [("frame", _rgb(video)), ("recon", _rgb(recon))]
    if pred is not None:
        rows.append(("pred t+1", _rgb(pred)))
    rows += [(f"slot {k}", masks[:, k].numpy()) for k in range(masks.shape[1])]
    T = video.shape[0]
    fig, axes = plt.subplots(len(rows), T, figsize=(1.1 * T, 1.1 * len(rows)), squeeze=False)
    for i, (name, images) in enumerate(rows):
        for t in range(T):
            ax = axes[i, t]
            ax.imshow(images[t], vmin=0, vmax=1, cmap=None if images[t].ndim == 3 else "gray")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i, 0].set_ylabel(name, fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def write_decomposition_gif(
    video: torch.Tensor, recon: torch.Tensor, masks: torch.Tensor, path: Path
) -> Path:
    """Per frame, one row per clip: video | reconstruction | argmax slot colours. (N, T, ...) inputs."""
    colours = slot_colours(masks.shape[2])
    slots = colours[masks.argmax(2)].permute(0, 1, 4, 2, 3)  # (N, T, 3, H, W)
    panel = torch.cat([video, recon.clamp(0, 1), slots], dim=-1)  # (N, T, 3, H, 3W)
    frames = torch.cat(list(panel), dim=-2)  # (T, 3, N*H, 3W): clips stacked vertically
    pixels = (frames.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, pixels, duration=250, loop=0)
    return path
