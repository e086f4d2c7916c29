"""Chromaticity: the colour of a surface without its brightness.

Shading scales a surface's three channels alike, so rgb / (r + g + b) is the same on an object's lit
and shaded sides. SFA can read it beside the frame (``encoder_input="rgb_chroma"``) and the
object-centric task can reconstruct it instead of the frame (``task.target chromaticity``;
docs/video_reasoning.md, issue 16 part 3).
"""

from __future__ import annotations

import torch


def chromaticity(images: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """RGB in [0, 1], channels third from last ((N, 3, H, W) or (B, T, 3, H, W)) -> rgb / (r + g + b),
    the same shape: the same for a colour at any brightness; black (below ``eps``) is grey (1/3
    each), as the limit of a dimmed grey."""
    total = images.sum(dim=-3, keepdim=True)  # (..., 1, H, W)
    return (images + eps / 3) / (total + eps)
