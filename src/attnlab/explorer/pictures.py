"""Tensors as what a browser draws: PNG data URLs and maps scaled to [0, 1]."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

if TYPE_CHECKING:  # matplotlib is imported by the viewers that draw figures, not by every page
    from matplotlib.figure import Figure


def png_url(image: torch.Tensor, value_range: tuple[float, float] | None = None) -> str:
    """A (C, H, W) image (C = 1 or 3), or an (H, W) array, as a PNG data URL; values are scaled
    from their own min and max (inputs may be normalised), so the picture shows the contrast, or
    from ``value_range`` where the range is known (a generator's [-1, 1]: a flat sample stays flat)."""
    pixels = image.detach().float().cpu()
    if pixels.dim() == 3:
        pixels = pixels.permute(1, 2, 0)  # (H, W, C)
        pixels = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
    low, high = (pixels.min(), pixels.max()) if value_range is None else torch.tensor(value_range)
    pixels = pixels.clamp(low, high)
    scaled = ((pixels - low) / (high - low).clamp_min(1e-12) * 255).round().to(torch.uint8).numpy()
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(scaled)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def figure_url(figure: Figure) -> str:
    """A matplotlib figure drawn server-side (labelled matrices, scatter plots) as a PNG data URL."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def rounded(values: torch.Tensor) -> list[float]:
    """Flattened values in [0, 1] (masks, probabilities) as they are, rounded for the wire."""
    return [round(v, 4) for v in values.detach().float().cpu().flatten().tolist()]


def unit(values: torch.Tensor) -> list[float]:
    """Flattened and min-max scaled to [0, 1] (a constant map is all 0), rounded for the wire."""
    flat = values.detach().float().cpu().flatten()
    low, high = flat.min(), flat.max()
    return rounded((flat - low) / (high - low) if high > low else torch.zeros_like(flat))
