"""Pictures of an object-centric decomposition: a PNG grid and an animated GIF."""

from __future__ import annotations

import math
from pathlib import Path

import imageio.v3 as iio
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

PANELS = ("input", "reconstruction", "slots (argmax)")  # the GIF's columns
_MIN_PANEL = 96  # pixels: small frames are enlarged (nearest) so that the labels fit over them
_LINE = 16  # pixels per line of label text


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
    """Per frame, one row per clip: input | reconstruction | argmax slot colours, labelled.

    ``video``/``recon`` (N, T, 3, H, W), ``masks`` (N, T, K, H, W). Above the columns
    their names (:data:`PANELS`), below them each slot's colour and "slot k"."""
    pixels = decomposition_frames(video, recon, masks)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, pixels, duration=250, loop=0)
    return path


def decomposition_frames(
    video: torch.Tensor, recon: torch.Tensor, masks: torch.Tensor, *, labels: bool = True
) -> np.ndarray:
    """(T, H', W', 3) uint8 frames of :func:`write_decomposition_gif`; ``labels=False``: panels only."""
    colours = slot_colours(masks.shape[2])
    slots = colours[masks.argmax(2)].permute(0, 1, 4, 2, 3)  # (N, T, 3, H, W)
    scale = max(1, math.ceil(_MIN_PANEL / video.shape[-1]))
    parts = [F.pad(x, (0, 1, 0, 1), value=1.0) for x in (video.clamp(0, 1), recon.clamp(0, 1), slots)]
    panel = torch.cat(parts, dim=-1)  # (N, T, 3, H+1, 3(W+1)): a white line right of and below each
    frames = torch.cat(list(panel), dim=-2)  # (T, 3, N(H+1), 3(W+1)): clips stacked vertically
    frames = frames.repeat_interleave(scale, -2).repeat_interleave(scale, -1)  # nearest enlargement
    pixels = (frames.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)  # (T, N(H+1)s, 3(W+1)s, 3)
    if not labels:
        return pixels
    width = pixels.shape[2]
    header = _text_strip(width, [(i * width // 3, name) for i, name in enumerate(PANELS)], None)
    legend = _legend_strip(width, colours)
    return np.stack([np.concatenate([header, frame, legend], axis=0) for frame in pixels])


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=_LINE - 4)
    except (TypeError, OSError):  # Pillow < 10.1 or without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _text_strip(
    width: int, items: list[tuple[int, str]], swatches: list[tuple[int, int, tuple[int, ...]]] | None
) -> np.ndarray:
    """(rows * _LINE, width, 3) white strip with each text at its (x, line) and optional swatches."""
    lines = 1 + max((x // width for x, _ in items), default=0)
    image = Image.new("RGB", (width, lines * _LINE), "white")
    draw = ImageDraw.Draw(image)
    for x, text in items:
        line, left = divmod(x, width)
        draw.text((left + 3, line * _LINE + 2), text, fill="black", font=_font())
    for x, line, colour in swatches or []:
        draw.rectangle((x, line * _LINE + 3, x + 9, line * _LINE + 12), fill=colour, outline="black")
    return np.asarray(image)


def _legend_strip(width: int, colours: torch.Tensor) -> np.ndarray:
    """Each slot's colour swatch and "slot k", as many per line as fit."""
    entry = 64  # pixels per legend entry
    per_line = max(1, width // entry)
    items, swatches = [], []
    for k, colour in enumerate((colours * 255).round().int().tolist()):
        line, col = divmod(k, per_line)
        items.append((line * width + col * entry + 12, f"slot {k}"))
        swatches.append((col * entry + 3, line, tuple(colour)))
    return _text_strip(width, items, swatches)
