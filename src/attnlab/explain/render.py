"""Pictures of where a model looks: heat maps over images (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from attnlab.errors import InputError


def to_display(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) any range -> (N, H, W, 3) in [0, 1], each image min-max scaled on its own."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise InputError(f"images must be (N, 1|3, H, W), got {tuple(images.shape)}")
    x = images.detach().float().cpu()
    low = x.amin(dim=(1, 2, 3), keepdim=True)
    high = x.amax(dim=(1, 2, 3), keepdim=True)
    x = (x - low) / (high - low).clamp_min(1e-8)
    return x.expand(-1, 3, -1, -1).permute(0, 2, 3, 1)  # (N, H, W, 3)


def upsample_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, h, w) or (N, 1, h, w) -> (N, H, W), bilinear."""
    if maps.dim() == 4 and maps.shape[1] == 1:
        maps = maps[:, 0]
    if maps.dim() != 3:
        raise InputError(f"maps must be (N, h, w) or (N, 1, h, w), got {tuple(maps.shape)}")
    return F.interpolate(
        maps.detach().float().cpu()[:, None], size=size, mode="bilinear", align_corners=False
    )[:, 0]


def overlay_grid(
    images: torch.Tensor, maps: dict[str, torch.Tensor], path: Path, *, titles: list[str] | None = None
) -> Path:
    """One column per image: the image, then each named map over it (jet, alpha 0.5)."""
    shown = to_display(images)
    n = shown.shape[0]
    rows = 1 + len(maps)
    fig, axes = plt.subplots(rows, n, figsize=(1.6 * n, 1.6 * rows), squeeze=False)
    for j in range(n):
        axes[0, j].imshow(shown[j].numpy())
        if titles:
            axes[0, j].set_title(titles[j], fontsize=7)
    for i, (name, m) in enumerate(maps.items(), start=1):
        up = upsample_maps(m, (shown.shape[1], shown.shape[2]))
        for j in range(n):
            axes[i, j].imshow(shown[j].numpy())
            axes[i, j].imshow(up[j].numpy(), cmap="jet", alpha=0.5)
        axes[i, 0].set_ylabel(name, fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def video_attention_grid(
    video: torch.Tensor, spatial: torch.Tensor, temporal: torch.Tensor | None, path: Path, *, frames: int = 8
) -> Path:
    """Per sample two rows: frames, then frames under their spatial map; titles give M_t.

    ``video`` (N, C, T, H, W), ``spatial`` (N, T, h, w) or (N, 1, T, h, w), ``temporal`` (N, T).
    """
    if video.dim() != 5:
        raise InputError(f"video must be (N, C, T, H, W), got {tuple(video.shape)}")
    if spatial.dim() == 5:
        spatial = spatial[:, 0]
    n, _, t, h, w = video.shape
    picks = torch.linspace(0, t - 1, min(frames, t)).round().long()
    fig, axes = plt.subplots(2 * n, len(picks), figsize=(1.3 * len(picks), 1.4 * 2 * n), squeeze=False)
    for i in range(n):
        shown = to_display(video[i].transpose(0, 1)[picks])  # (F, H, W, 3)
        maps = upsample_maps(spatial[i, picks], (h, w))  # (F, H, W)
        for j, f in enumerate(picks.tolist()):
            axes[2 * i, j].imshow(shown[j].numpy())
            title = f"t={f}" if temporal is None else f"t={f} M_t={float(temporal[i, f]):.2f}"
            axes[2 * i, j].set_title(title, fontsize=6)
            axes[2 * i + 1, j].imshow(shown[j].numpy())
            axes[2 * i + 1, j].imshow(maps[j].numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
