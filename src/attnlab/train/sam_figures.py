"""The picture of seed 004's iterative inference: the prompt boxes of each iteration, then the
final masks. Shared by the ``sam`` task's report and ``attnlab segment``."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from attnlab.files import atomic_write
from attnlab.models.sam.iterative import IterativeResult

MAX_PANELS = 4  # iterations drawn before the final masks


def plot_iterations(image: torch.Tensor, result: IterativeResult, path: Path, first_title: str) -> Path:
    """``image`` (3, H, W) in 0-255 (its first channel is drawn in grey); writes ``path`` (PNG)."""
    steps = min(int(result.iterations.max()), MAX_PANELS)
    fig, axes = plt.subplots(1, steps + 1, figsize=(3 * (steps + 1), 3.4), squeeze=False)
    grey = image[0].float().cpu().numpy()
    for t, ax in enumerate(axes[0]):
        ax.imshow(grey, cmap="gray", vmin=0, vmax=255)
        ax.axis("off")
        if t == steps:
            ax.imshow(
                _label_overlay(result.masks),
                alpha=0.45,
                cmap="tab10",
                vmin=1,
                vmax=10,
                interpolation="nearest",
            )
            ax.set_title(f"final (mean {result.iterations.float().mean():.2f} passes)")
            continue
        for x0, y0, x1, y1 in result.boxes[t].tolist():
            ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="cyan", lw=1))
        ax.set_title(first_title if t == 0 else f"iteration {t + 1} prompts")
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, dpi=90, format="png"))
    plt.close(fig)
    return path


def label_image(masks: torch.Tensor) -> torch.Tensor:
    """Masks (N, H, W) bool -> (H, W) int64: 0 background, i + 1 where mask i is (a later box wins)."""
    ids = torch.arange(1, masks.shape[0] + 1, device=masks.device)[:, None, None]  # (N, 1, 1)
    return (masks.long() * ids).amax(0) if masks.shape[0] else torch.zeros(masks.shape[1:], dtype=torch.long)


def _label_overlay(masks: torch.Tensor) -> np.ma.MaskedArray:
    labels = label_image(masks).cpu().numpy()
    cycled = (labels - 1) % 10 + 1  # tab10's ten colours, cycled over more boxes
    return np.ma.masked_where(labels == 0, cycled)  # colour the cells only
