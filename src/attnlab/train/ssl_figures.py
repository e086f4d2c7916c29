"""Report figures of the self-supervised teachers: DINO's [CLS] attention per head (the maps of
the paper's Fig. 1 and ``visualize_attention.py``, before its thresholding) and MAE's masked input,
reconstruction and original (the paper's Fig. 2)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from attnlab.explain.cam import min_max_normalize
from attnlab.train.figures import _save, overlays_figure, plt


def plot_cls_attention(
    images: torch.Tensor, maps: torch.Tensor, path: Path, *, titles: Sequence[str] | None = None
) -> Path:
    """``images`` (N, C, H, W), ``maps`` (N, heads, h, w): one row per head over the images, each map
    min-max scaled per image so that every head's peak shows."""
    scaled = min_max_normalize(maps.flatten(0, 1)).view_as(maps)  # (N, heads, h, w) in [0, 1]
    rows = {f"head {h}": scaled[:, h] for h in range(maps.shape[1])}
    return _save(overlays_figure(images, rows, titles=titles), path)


def plot_reconstructions(
    masked: torch.Tensor,
    reconstruction: torch.Tensor,
    original: torch.Tensor,
    path: Path,
    *,
    titles: Sequence[str] | None = None,
) -> Path:
    """Three rows of grey (N, 1, H, W) images on one shared scale: masked input (removed patches
    shown grey), the reconstruction (visible patches pasted back, as MAE's figures), the original."""
    rows = {"masked input": masked, "reconstruction\n+ visible": reconstruction, "original": original}
    n = original.shape[0]
    low, high = float(original.min()), float(original.max())
    fig, axes = plt.subplots(3, n, figsize=(1.5 * n + 0.6, 4.8), squeeze=False, layout="constrained")
    for i, (name, images) in enumerate(rows.items()):
        for j in range(n):
            axes[i, j].imshow(images[j, 0].float().numpy(), cmap="gray", vmin=low, vmax=high)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
        axes[i, 0].set_ylabel(name, fontsize=8)
    if titles:
        for j, title in enumerate(titles):
            axes[0, j].set_title(title, fontsize=7)
    return _save(fig, path)
