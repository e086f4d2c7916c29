"""Sample grids of GAN images: one row per source (real, untrained, each generator), same codes."""

from __future__ import annotations

from pathlib import Path

import torch

from attnlab.models.gan.stargan2 import StarGAN2


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


GRID_IMAGES, GRID_STYLES = 8, 5  # the translation grids' columns and latent rows


@torch.no_grad()
def translation_grid(
    translator: StarGAN2,
    images: torch.Tensor,
    names: tuple[str, str],
    to_domain: int,
    z: torch.Tensor,
    path: Path,
) -> Path:
    """The first ``GRID_IMAGES`` images of domain ``names[1 - to_domain]`` and their translations into
    ``to_domain`` by ``translator.translate``, one row per latent of the first ``GRID_STYLES`` in ``z``."""
    x = images[:GRID_IMAGES]
    domains = torch.full((len(x),), to_domain, dtype=torch.int64, device=x.device)
    rows = {f"{names[1 - to_domain]} (test)": x}
    for k in range(min(GRID_STYLES, len(z))):
        zk = z[k : k + 1].expand(len(x), -1).to(x.device)
        rows[f"-> {names[to_domain]}, latent {k}"] = translator.translate(x, domains, zk)
    return sample_grid(rows, path)
