"""Batches as a pure function of (seed, step, rank): the basis of exact resume.

Lightning does not restore a dataloader's position after a restart. Instead, the
training sampler starts at the restored global step and yields the same index
batches an uninterrupted run would have seen there. For a finite dataset the
order is a fresh seeded permutation per pass; for a procedural dataset (one that
generates sample ``i`` from ``i``) indices simply count up.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from attnlab.errors import ConfigError


class ResumableBatchSampler(Sampler[list[int]]):
    """Infinite stream of index batches for one rank, starting at ``start_batch``.

    Global batch ``b`` covers stream positions ``[b * G, (b + 1) * G)`` with
    ``G = batch_size * world_size``; this rank takes its contiguous share.
    """

    def __init__(
        self,
        *,
        num_samples: int | None,
        batch_size: int,
        seed: int,
        start_batch: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"bad sampler setting: batch_size={batch_size}, rank={rank}/{world_size}")
        if num_samples is not None and num_samples < batch_size * world_size:
            raise ConfigError(f"dataset has {num_samples} samples, fewer than one global batch")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.start_batch = start_batch
        self.rank = rank
        self.world_size = world_size
        self._perm_cache: tuple[int, torch.Tensor] | None = None

    def _permutation(self, epoch: int) -> torch.Tensor:
        assert self.num_samples is not None
        if self._perm_cache is None or self._perm_cache[0] != epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm_cache = (epoch, torch.randperm(self.num_samples, generator=gen))
        return self._perm_cache[1]

    def _index(self, position: int) -> int:
        if self.num_samples is None:
            return position
        epoch, offset = divmod(position, self.num_samples)
        return int(self._permutation(epoch)[offset])

    def __iter__(self) -> Iterator[list[int]]:
        batch = self.start_batch
        while True:
            first = (batch * self.world_size + self.rank) * self.batch_size
            yield [self._index(p) for p in range(first, first + self.batch_size)]
            batch += 1
