"""Pictures of what a V-JEPA encoder learnt: the first three principal components of its patch
features, as colours over the clip's tubelets (one PCA over all tokens of the clips shown, so
colours compare across time and across clips)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from attnlab.explain.render import to_display


def pca_colours(features: torch.Tensor) -> torch.Tensor:
    """(B, N, D) features -> (B, N, 3) in [0, 1]: the top 3 principal components, min-max scaled."""
    flat = features.reshape(-1, features.shape[-1]).double()
    flat = flat - flat.mean(0)
    _, _, v = torch.linalg.svd(flat, full_matrices=False)  # rows of v: principal directions
    comps = flat @ v[:3].T  # (B * N, 3)
    low, high = comps.amin(0), comps.amax(0)
    comps = (comps - low) / (high - low).clamp_min(1e-12)
    return comps.reshape(*features.shape[:2], 3).float()


def plot_feature_pca(
    clips: torch.Tensor, features: torch.Tensor, grid: tuple[int, int, int], tubelet: int, path: Path
) -> Path:
    """Per clip two rows: the first frame of every tubelet, and its tokens' PCA colours."""
    t, h, w = grid
    colours = pca_colours(features).reshape(-1, t, h, w, 3)  # (B, T', h, w, 3)
    n = clips.shape[0]
    fig, axes = plt.subplots(2 * n, t, figsize=(1.3 * t, 2.6 * n), squeeze=False, layout="constrained")
    for i in range(n):
        frames = to_display(clips[i].transpose(0, 1)[::tubelet])  # (T', H, W, 3)
        for j in range(t):
            axes[2 * i, j].imshow(frames[j].numpy())
            axes[2 * i, j].set_title(f"frames {j * tubelet}-{(j + 1) * tubelet - 1}", fontsize=6)
            axes[2 * i + 1, j].imshow(colours[i, j].numpy(), interpolation="nearest")
        axes[2 * i, 0].set_ylabel(f"clip {i}", fontsize=7)
        axes[2 * i + 1, 0].set_ylabel("feature PCA", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
