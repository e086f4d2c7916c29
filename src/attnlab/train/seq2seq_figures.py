"""Alignment matrices like the survey's (Bahdanau et al. 2015, Fig. 3): target tokens down, source
tokens across, the attention weight of each pair in grey, the known alignment marked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch


def plot_alignments(
    weights: torch.Tensor,
    source: list[list[str]],
    target: list[list[str]],
    alignment: torch.Tensor,
    titles: list[str],
    path: Path,
) -> Path:
    """``weights`` (N, T, S) for N sequences of len(target[i]) x len(source[i]) real tokens;
    ``alignment`` (N, T) known source position per target token (negative: none), drawn as red dots."""
    n = weights.shape[0]
    fig, axes = plt.subplots(1, n, figsize=(2.9 * n, 3.2), squeeze=False)
    for i, ax in enumerate(axes[0]):
        rows, cols = len(target[i]), len(source[i])
        ax.imshow(weights[i, :rows, :cols].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        known = [(t, int(s)) for t, s in enumerate(alignment[i, :rows].tolist()) if s >= 0]
        if known:
            ys, xs = zip(*known, strict=True)
            ax.scatter(xs, ys, s=6, c="red", marker="o")
        ax.set_xticks(range(cols), source[i], fontsize=6, rotation=90)
        ax.set_yticks(range(rows), target[i], fontsize=6)
        ax.set_title(titles[i], fontsize=7)
        ax.set_xlabel("source")
    axes[0, 0].set_ylabel("target (reference)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path
