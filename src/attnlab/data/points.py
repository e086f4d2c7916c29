"""Generated 2D points from a ring of Gaussians (the toy GAN benchmark), in ragged sets.

The mixture has ``num_modes`` isotropic Gaussians of standard deviation ``std`` whose
means lie evenly on a circle of ``radius`` (8 modes, radius 2, std 0.02 as in Unrolled
GAN, arXiv:1611.02163, and VEEGAN). A sample is a small set of 1 to ``max_set_size``
points drawn from the mixture, so batches are ragged: :class:`PointSets`, a dataclass of
lists of tensors, joined by :func:`collate_point_sets` (the datamodule's ``collate_fn``).
Sample ``i`` is a pure function of ``(seed, i)``; the training stream is procedural.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

from attnlab.data._registry import register_datamodule
from attnlab.data.datamodule import DataModule, Split
from attnlab.errors import ConfigError


@dataclass
class PointSet:
    """One sample: ``n`` points and the mixture component each was drawn from."""

    points: torch.Tensor  # (n, 2)
    modes: torch.Tensor  # (n,) long
    index: int  # the sample's index in its split


@dataclass
class PointSets:
    """A batch of B ragged point sets (Lightning moves the tensors in the lists to the device)."""

    sets: list[torch.Tensor]  # B tensors (n_i, 2)
    modes: list[torch.Tensor]  # B tensors (n_i,) long
    index: torch.Tensor  # (B,) long: the samples' indices

    @property
    def batch_size(self) -> int:
        return len(self.sets)

    def points(self) -> torch.Tensor:
        """Every set's points, concatenated: (N, 2) with N = sum of n_i."""
        return torch.cat(self.sets)


def collate_point_sets(samples: list[PointSet]) -> PointSets:
    return PointSets(
        sets=[s.points for s in samples],
        modes=[s.modes for s in samples],
        index=torch.tensor([s.index for s in samples]),
    )


def mode_centers(num_modes: int, radius: float) -> torch.Tensor:
    """(num_modes, 2) means, evenly spaced on the circle, the first at angle 0."""
    angles = torch.arange(num_modes, dtype=torch.float64) * (2 * math.pi / num_modes)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


class RingOfGaussians(Dataset[PointSet]):
    def __init__(
        self, *, centers: torch.Tensor, std: float, max_set_size: int, seed: int, size: int | None
    ) -> None:
        self.centers, self.std, self.max_set_size = centers, std, max_set_size
        self.seed, self.size = seed, size
        self.procedural = size is None  # the training stream: sample i for any i >= 0

    def __len__(self) -> int:
        if self.size is None:
            raise TypeError("a procedural dataset has no length")
        return self.size

    def __getitem__(self, index: int) -> PointSet:
        if self.size is not None and not 0 <= index < self.size:
            raise IndexError(index)
        gen = torch.Generator().manual_seed(self.seed * 7_919 + index)
        n = int(torch.randint(1, self.max_set_size + 1, (), generator=gen))
        modes = torch.randint(len(self.centers), (n,), generator=gen)
        points = self.centers[modes] + self.std * torch.randn(n, 2, generator=gen)  # (n, 2)
        return PointSet(points=points, modes=modes, index=index)


@register_datamodule("ring-points")
class RingPointsData(DataModule):
    """Ragged sets of 2D points from a ring of Gaussians (8 modes, radius 2, std 0.02)."""

    def __init__(
        self,
        *,
        seed: int,
        num_modes: int = 8,
        radius: float = 2.0,
        std: float = 0.02,
        max_set_size: int = 4,
        val_size: int = 256,
        test_size: int = 1024,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
        if num_modes < 1 or radius <= 0 or std <= 0 or max_set_size < 1:
            raise ConfigError("ring-points needs num_modes >= 1, radius > 0, std > 0, max_set_size >= 1")
        self.num_modes, self.radius, self.std, self.max_set_size = num_modes, radius, std, max_set_size
        self.sizes: dict[Split, int | None] = {"train": None, "val": val_size, "test": test_size}

    @property
    def centers(self) -> torch.Tensor:
        return mode_centers(self.num_modes, self.radius)

    def collate_fn(self) -> Callable[[list[Any]], Any]:
        return collate_point_sets

    def build(self, split: Split) -> RingOfGaussians:
        offset = {"train": 0, "val": 1_000_003, "test": 2_000_029}[split]  # disjoint streams per split
        return RingOfGaussians(
            centers=self.centers,
            std=self.std,
            max_set_size=self.max_set_size,
            seed=self.seed + offset,
            size=self.sizes[split],
        )
