"""Sample grids of GAN images: one row per source (real, untrained, each generator), same codes."""

from __future__ import annotations

from pathlib import Path

import torch


def sample_grid(rows: dict[str, torch.Tensor], path: Path) -> Path:
    """Rows of images (n, C, H, W) in [-1, 1] (RGB when C is 3, else the first channel in grey),
    titled by their keys, drawn into one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(len(rows), 1, figsize=(0.8 * n, 0.95 * len(rows)), squeeze=False)
    for ax, (title, images) in zip(axes[:, 0], rows.items(), strict=True):
        tiles = (images.detach().float().cpu().clamp(-1, 1) + 1) / 2  # (n, C, H, W)
        if tiles.shape[1] == 3:  # colour: (H, n * W, 3)
            ax.imshow(torch.cat(list(tiles.permute(0, 2, 3, 1)), dim=1).numpy())
        else:  # the first channel in grey: (H, n * W)
            ax.imshow(torch.cat(list(tiles[:, 0]), dim=1).numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8, loc="left")
        ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
