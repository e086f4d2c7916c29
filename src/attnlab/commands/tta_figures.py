"""Pictures of ``attnlab tta`` beside its translation grids (``train/gan_figures.py``): a UMAP of the
classifier's features (seed 001, Fig. 3: per class, the source, the target and the translated target
images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from attnlab.errors import ConfigError

MARKERS = ("o", "x", "^", "s", "v", "D")  # per set of images


def per_class(labels: torch.Tensor, per: int, seed: int) -> torch.Tensor:
    """Indices of up to ``per`` random images of every class (the thesis: 25 per class)."""
    gen = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(labels):
        mine = torch.nonzero(labels == c).flatten()
        picks.append(mine[torch.randperm(len(mine), generator=gen)[:per]])
    return torch.cat(picks)


def umap_figure(sets: dict[str, tuple[torch.Tensor, torch.Tensor]], path: Path, seed: int) -> Path:
    """One UMAP of every set's features (N_i, D), labels (N_i,): colour is the class, the marker the set."""
    try:
        import umap
    except ImportError as err:  # the 'tta' extra
        raise ConfigError(f"the UMAP figure needs umap-learn ({err}): pip install 'attnlab[tta]'") from err
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    features = torch.cat([f for f, _ in sets.values()]).double().numpy()
    embedded = umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=seed, n_jobs=1).fit_transform(features)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    start = 0
    for (name, (f, labels)), marker in zip(sets.items(), MARKERS, strict=False):
        points = np.asarray(embedded[start : start + len(f)])
        start += len(f)
        ax.scatter(points[:, 0], points[:, 1], c=labels.numpy(), cmap="tab10", vmin=0, vmax=9, s=12,
                   marker=marker, label=name, alpha=0.8)  # fmt: skip
    ax.legend(loc="best", fontsize=8)
    ax.set_title("Classifier features (UMAP); colour = digit", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
