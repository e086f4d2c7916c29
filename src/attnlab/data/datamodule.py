"""The base LightningDataModule: resumable training batches, plain evaluation loaders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from attnlab.data import uploads
from attnlab.data.sampler import ResumableBatchSampler
from attnlab.data.uploads import UploadKind
from attnlab.errors import ConfigError, InputError

Split = Literal["train", "val", "test"]


class DataModule(L.LightningDataModule):
    """Subclasses implement :meth:`build`; may override :meth:`collate_fn`. ``batch_size`` is per device.

    A dataset whose ``procedural`` attribute is True generates sample ``i`` from
    ``i`` and has no end; the training stream then never repeats a sample.
    """

    upload: ClassVar[UploadKind | None] = None  # the kind of file :meth:`from_upload` takes

    def __init__(self, *, seed: int, batch_size: int = 32, eval_batch_size: int = 256, num_workers: int = 0):
        super().__init__()
        if batch_size < 1 or eval_batch_size < 1 or num_workers < 0:
            raise ConfigError("data.batch_size and data.eval_batch_size must be >= 1, num_workers >= 0")
        self.seed = seed
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self._sets: dict[Split, Dataset[object]] = {}

    def build(self, split: Split) -> Dataset[object]:
        raise NotImplementedError

    def from_upload(self, name: str, data: bytes) -> dict[str, torch.Tensor]:
        """A file someone brought (the explorer's upload) as one example of this dataset, made as
        its test examples are made (size, channels, normalisation; their keys). Which files a
        dataset takes is its :attr:`upload` kind; it implements the matching ``from_*`` method."""
        if self.upload == "picture":
            return {"input": self.from_picture(uploads.read_picture(data))}
        if self.upload == "video":
            return self.from_video(uploads.read_video(data, name))
        if self.upload == "signal":
            return {"input": self.from_signal(uploads.read_signal(data, name))}
        if self.upload == "points":
            return self.from_points(uploads.read_point_cloud(data, name))
        raise InputError(f"{type(self).__name__} takes no uploads (only its own test examples)")

    def from_picture(self, picture: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 RGB -> one ``input``; datasets whose :attr:`upload` is "picture"."""
        raise NotImplementedError

    def from_video(self, frames: np.ndarray) -> dict[str, torch.Tensor]:
        """(T, H, W, 3) uint8 RGB -> one example; datasets whose :attr:`upload` is "video"."""
        raise NotImplementedError

    def from_signal(self, signal: np.ndarray) -> torch.Tensor:
        """(C, L) float64 -> one ``input``; datasets whose :attr:`upload` is "signal"."""
        raise NotImplementedError

    def from_points(self, points: np.ndarray) -> dict[str, torch.Tensor]:
        """(N, 4) float32 x y z reflectance -> one example; datasets whose :attr:`upload` is "points"."""
        raise NotImplementedError

    def collate_fn(self) -> Callable[[list[Any]], Any]:
        """The function that joins a list of samples into a batch, for every split's loader.

        Default: torch's ``default_collate`` (dict samples -> a dict of stacked tensors).
        Override it for ragged samples or dataclass batches (:mod:`attnlab.data.batch`);
        return a module-level function or a ``functools.partial`` of one, so that worker
        processes can pickle it.
        """
        return default_collate

    def dataset(self, split: Split) -> Dataset[object]:
        if split not in self._sets:
            self._sets[split] = self.build(split)
        return self._sets[split]

    def train_dataloader(self) -> DataLoader[object]:
        data = self.dataset("train")
        trainer = self.trainer
        assert trainer is not None, "train_dataloader needs an attached Trainer"
        sampler = ResumableBatchSampler(
            num_samples=None if getattr(data, "procedural", False) else len(data),  # type: ignore[arg-type]
            batch_size=self.batch_size,
            seed=self.seed,
            start_batch=trainer.global_step * trainer.accumulate_grad_batches,
            rank=trainer.global_rank,
            world_size=trainer.world_size,
        )
        return self._loader(data, batch_sampler=sampler)

    def val_dataloader(self) -> DataLoader[object]:
        return self._loader(self.dataset("val"), batch_size=self.eval_batch_size)

    def test_dataloader(self) -> DataLoader[object]:
        return self._loader(self.dataset("test"), batch_size=self.eval_batch_size)

    def _loader(
        self,
        data: Dataset[object],
        *,
        batch_sampler: ResumableBatchSampler | None = None,
        batch_size: int | None = None,
    ) -> DataLoader[object]:
        # An explicit generator keeps DataLoader from drawing its base seed from the
        # global RNG, which would make a resumed run's randomness differ.
        batching = {"batch_sampler": batch_sampler} if batch_sampler else {"batch_size": batch_size}
        return DataLoader(
            data,
            **batching,  # type: ignore[arg-type]
            collate_fn=self.collate_fn(),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed),
        )
