"""V-JEPA's masks over the (T', H', W') token grid: which tokens the context encoder sees and which
the predictor must predict (Bardes et al. 2024, arXiv:2404.08471, Sec. 3.2 and Table 4).

Multi-block (facebookresearch/jepa ``src/masks/multiblock3d.py``), per call:

1. a ``torch.Generator`` seeded with the call's step (0, 1, ...) draws three ``torch.rand(1)``:
   temporal scale, spatial scale, aspect ratio; ``keep = int(H' * W' * scale)``,
   ``h = round(sqrt(keep * ar))``, ``w = round(sqrt(keep / ar))`` (capped at the grid),
   ``t = max(1, int(T' * temporal_scale))``: one block size for the whole batch;
2. for each sample, ``num_blocks`` blocks at positions drawn with ``torch.randint`` from the
   global RNG (top, left, start, in that order); target = union of the blocks, context = the
   complement (tokens at or after ``max_temporal_keep * T'`` frames are never context: the
   causal variant); a sample whose context is empty is redrawn;
3. context and target index lists (ascending) are cut to the shortest in the batch.

Following this RNG order reproduces the official index lists exactly for the same seeds (the
goldens in ``shared/reference/vjepa``). Random tube (``src/masks/random_tube.py``): the same
random fraction ``ratio`` of spatial positions is masked in every frame; the official draws with
numpy's ``shuffle``, ours with ``torch.randperm`` (same distribution, not the same draws).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from attnlab.errors import ConfigError, InputError

Grid = tuple[int, int, int]
MAX_REDRAWS = 1000  # a configuration that leaves no context this often is a mistake, not bad luck


@dataclass(frozen=True)
class MaskConfig:
    """One mask type. ``kind="multiblock"`` reads the block fields, ``"random_tube"`` reads ``ratio``."""

    kind: Literal["multiblock", "random_tube"] = "multiblock"
    num_blocks: int = 8
    spatial_scale: tuple[float, float] = (0.15, 0.15)
    temporal_scale: tuple[float, float] = (1.0, 1.0)
    aspect_ratio: tuple[float, float] = (0.75, 1.5)
    max_temporal_keep: float = 1.0  # < 1: context only in the first frames (causal masking)
    max_keep: int | None = None  # cap on context tokens
    ratio: float = 0.9  # random tube: fraction of spatial positions masked

    def check(self, where: str = "mask") -> None:
        ranges = {"spatial_scale": self.spatial_scale, "temporal_scale": self.temporal_scale}
        for name, (lo, hi) in ranges.items():
            if not 0 < lo <= hi <= 1:
                raise ConfigError(f"{where}.{name} must satisfy 0 < min <= max <= 1, got {(lo, hi)}")
        if not 0 < self.aspect_ratio[0] <= self.aspect_ratio[1]:
            raise ConfigError(f"{where}.aspect_ratio must satisfy 0 < min <= max, got {self.aspect_ratio}")
        if self.num_blocks < 1:
            raise ConfigError(f"{where}.num_blocks must be >= 1, got {self.num_blocks}")
        if not 0 < self.max_temporal_keep <= 1:
            raise ConfigError(f"{where}.max_temporal_keep must be in (0, 1], got {self.max_temporal_keep}")
        if self.max_keep is not None and self.max_keep < 1:
            raise ConfigError(f"{where}.max_keep must be >= 1, got {self.max_keep}")
        if not 0 < self.ratio < 1:
            raise ConfigError(f"{where}.ratio must be in (0, 1), got {self.ratio}")


SHORT_RANGE = MaskConfig(num_blocks=8, spatial_scale=(0.15, 0.15))  # configs/pretrain/vitl16.yaml
LONG_RANGE = MaskConfig(num_blocks=2, spatial_scale=(0.7, 0.7))
MULTIBLOCK = (SHORT_RANGE, LONG_RANGE)


def block_size(grid: Grid, config: MaskConfig, step: int) -> tuple[int, int, int]:
    """The (t, h, w) block of call ``step``: three draws from a generator seeded with ``step``."""
    duration, height, width = grid
    g = torch.Generator()
    g.manual_seed(step)
    draw = [float(torch.rand(1, generator=g)) for _ in range(3)]
    lo, hi = config.temporal_scale
    t = max(1, int(duration * (lo + draw[0] * (hi - lo))))
    lo, hi = config.spatial_scale
    keep = int(height * width * (lo + draw[1] * (hi - lo)))
    lo, hi = config.aspect_ratio
    ar = lo + draw[2] * (hi - lo)
    h = min(round(math.sqrt(keep * ar)), height)
    w = min(round(math.sqrt(keep / ar)), width)
    return (t, h, w)


def _context_map(grid: Grid, size: tuple[int, int, int], config: MaskConfig) -> torch.Tensor:
    """(T', H', W') int32: 1 where a token is context, 0 inside any of the sample's blocks."""
    duration, height, width = grid
    t, h, w = size
    keep = torch.ones(grid, dtype=torch.int32)
    max_context = max(1, int(duration * config.max_temporal_keep))
    for _ in range(config.num_blocks):
        top = int(torch.randint(0, height - h + 1, (1,)))
        left = int(torch.randint(0, width - w + 1, (1,)))
        start = int(torch.randint(0, duration - t + 1, (1,)))
        block = torch.ones(grid, dtype=torch.int32)
        block[start : start + t, top : top + h, left : left + w] = 0
        if max_context < duration:
            block[max_context:] = 0
        keep *= block
    return keep


def multiblock(
    grid: Grid, config: MaskConfig, batch_size: int, *, step: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Context indices (B, Nc) and target indices (B, Nt) of one mask type, ascending per row."""
    size = block_size(grid, config, step)
    if 0 in size:
        raise InputError(
            f"mask blocks of spatial scale {config.spatial_scale} on a {grid[1]}x{grid[2]} token grid "
            f"are empty (block {size}): the mask leaves no target; use a larger scale or grid"
        )
    contexts, targets = [], []
    for _ in range(batch_size):
        for _attempt in range(MAX_REDRAWS):
            keep = _context_map(grid, size, config).flatten()  # (N,)
            if bool(keep.any()):
                break
        else:
            raise InputError(
                f"mask of {config.num_blocks} blocks {size} on token grid {grid} leaves no context "
                f"in {MAX_REDRAWS} draws; use fewer or smaller blocks"
            )
        contexts.append(torch.nonzero(keep).flatten())
        targets.append(torch.nonzero(keep == 0).flatten())
    keep_context = min(len(c) for c in contexts)
    if config.max_keep is not None:
        keep_context = min(keep_context, config.max_keep)
    keep_target = min(len(t) for t in targets)
    return torch.stack([c[:keep_context] for c in contexts]), torch.stack([t[:keep_target] for t in targets])


def random_tube(grid: Grid, config: MaskConfig, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Context (B, Nc) and target (B, Nt) indices: per sample, ``ratio`` of the spatial positions
    are masked in every frame (the same positions across time: a tube)."""
    duration, height, width = grid
    spatial = height * width
    num_keep = int(spatial * (1.0 - config.ratio))
    if num_keep == 0:
        raise InputError(
            f"random tube ratio {config.ratio} on a {height}x{width} token grid leaves no context"
        )
    if num_keep == spatial:
        raise InputError(
            f"random tube ratio {config.ratio} on a {height}x{width} token grid leaves no target"
        )
    contexts, targets = [], []
    for _ in range(batch_size):
        keep = torch.zeros(spatial, dtype=torch.bool)
        keep[torch.randperm(spatial)[:num_keep]] = True
        keep = keep.repeat(duration)  # (N,), frame-major as the tokens
        contexts.append(torch.nonzero(keep).flatten())
        targets.append(torch.nonzero(~keep).flatten())
    return torch.stack(contexts), torch.stack(targets)


def sample_masks(
    grid: Grid, configs: tuple[MaskConfig, ...] | list[MaskConfig], batch_size: int, *, step: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """One collator call: (context indices, target indices) per mask type, in ``configs`` order."""
    if min(grid) < 1:
        raise InputError(f"token grid must be positive (T', H', W'), got {grid}")
    masks_enc, masks_pred = [], []
    for config in configs:
        if config.kind == "random_tube":
            enc, pred = random_tube(grid, config, batch_size)
        else:
            enc, pred = multiblock(grid, config, batch_size, step=step)
        masks_enc.append(enc)
        masks_pred.append(pred)
    return masks_enc, masks_pred
