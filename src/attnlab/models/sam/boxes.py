"""Boxes for SAM prompts: a mask's box, box checks, and the box jitter of seed 004.

Convention: boxes are xyxy in pixel-edge coordinates of the image they prompt, so a box covers
the pixels ``x0 <= x < x1``, ``y0 <= y < y1``; the box of a mask is (min x, min y, max x + 1,
max y + 1) over its pixels and its area (x1 - x0)(y1 - y0) is the mask's bounding-box pixel count.

Jitter (the thesis's "size error" of f): each of the four sides moves independently by exactly
``f`` times the box's extent along that side's axis (width for x0 and x1, height for y0 and
y1), outwards or inwards with probability 1/2 each; the result is clipped to the image. At
f < 0.5 a box keeps a positive area (the two sides of an axis move at most f + f < 1 extents
towards each other). Training draws f per box from the thesis's schedule: 0 with probability
0.6, 0.1 with 0.2, 0.2 with 0.2; evaluation uses one fixed f (0, 0.1, ..., 0.4).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from attnlab.errors import ConfigError, InputError

TRAIN_JITTER = ((0.0, 0.6), (0.1, 0.2), (0.2, 0.2))  # (fraction, probability): the thesis's schedule


def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Boolean masks (N, H, W) -> boxes (N, 4) xyxy pixel edges; an empty mask gives (0, 0, 0, 0)."""
    if masks.dim() != 3:
        raise InputError(f"masks must be (N, H, W), got {tuple(masks.shape)}")
    H, W = masks.shape[1:]
    masks = masks.bool()
    rows, cols = masks.any(dim=2), masks.any(dim=1)  # (N, H), (N, W)
    ys = torch.arange(H, device=masks.device)
    xs = torch.arange(W, device=masks.device)
    y0 = torch.where(rows, ys, H).amin(dim=1)
    y1 = torch.where(rows, ys + 1, 0).amax(dim=1)
    x0 = torch.where(cols, xs, W).amin(dim=1)
    x1 = torch.where(cols, xs + 1, 0).amax(dim=1)
    boxes = torch.stack([x0, y0, x1, y1], dim=1).float()  # (N, 4)
    return torch.where(rows.any(dim=1, keepdim=True), boxes, torch.zeros_like(boxes))


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) xyxy -> (...) areas (zero for an inverted box)."""
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def check_boxes(boxes: torch.Tensor, size: tuple[int, int], what: str = "boxes") -> None:
    """One-line InputError unless ``boxes`` (N, 4) are finite xyxy boxes of positive area inside (H, W)."""
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise InputError(f"{what} must be (N, 4) xyxy, got {tuple(boxes.shape)}")
    if not torch.isfinite(boxes).all():
        raise InputError(f"{what} contain NaN or inf")
    H, W = size
    outside = (boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] > W) | (boxes[:, 3] > H)
    if outside.any():
        i = int(outside.nonzero()[0])
        raise InputError(
            f"{what}[{i}] = {boxes[i].tolist()} lies outside the {H}x{W} image (x in [0, {W}], y in [0, {H}])"
        )
    flat = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    if flat.any():
        i = int(flat.nonzero()[0])
        raise InputError(f"{what}[{i}] = {boxes[i].tolist()} has zero area (need x1 > x0 and y1 > y0)")


def jitter_boxes(
    boxes: torch.Tensor, fractions: torch.Tensor | float, size: tuple[int, int], generator: torch.Generator
) -> torch.Tensor:
    """Each side of each box (N, 4) moved by +-fraction x its extent (module docstring), clipped to (H, W)."""
    frac = torch.as_tensor(fractions, dtype=boxes.dtype).expand(boxes.shape[0]).to(boxes.device)
    if (frac < 0).any() or (frac >= 0.5).any():
        raise InputError(f"jitter fractions must lie in [0, 0.5), got {frac.unique().tolist()}")
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    extent = torch.stack([w, h, w, h], dim=1)  # (N, 4)
    signs = torch.randint(0, 2, boxes.shape, generator=generator).to(boxes) * 2 - 1  # (N, 4) +-1
    moved = boxes + signs * frac[:, None] * extent
    H, W = size
    limit = boxes.new_tensor([W, H, W, H])
    return torch.minimum(moved.clamp(min=0), limit)


def check_jitter_schedule(schedule: Sequence[Sequence[float]], what: str) -> None:
    """One-line ConfigError unless ``schedule`` is (fraction, probability) pairs, fractions in
    [0, 0.5), probabilities > 0 summing to 1."""
    if not schedule or any(len(pair) != 2 for pair in schedule):
        raise ConfigError(f"{what} must be [[fraction, probability], ...], got {list(schedule)}")
    if any(not 0 <= f < 0.5 or p <= 0 for f, p in schedule):
        raise ConfigError(
            f"{what}: fractions must lie in [0, 0.5) and probabilities be > 0, got {list(schedule)}"
        )
    if abs(sum(p for _, p in schedule) - 1) > 1e-6:
        raise ConfigError(f"{what}: probabilities must sum to 1, got {sum(p for _, p in schedule):g}")


def sample_train_fractions(
    n: int, generator: torch.Generator, schedule: Sequence[Sequence[float]] = TRAIN_JITTER
) -> torch.Tensor:
    """Per-box jitter fractions (n,) drawn from ``schedule`` (default: the thesis's ``TRAIN_JITTER``)."""
    values = torch.tensor([f for f, _ in schedule])
    probs = torch.tensor([p for _, p in schedule])
    return values[torch.multinomial(probs, n, replacement=True, generator=generator)]
