"""Labelled uint8 image arrays as normalised tensors, and the validation cut of a training set,
shared by the image datamodules (Fashion-MNIST, CIFAR-10)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from attnlab.errors import ConfigError


class ImageArray(Dataset[dict[str, torch.Tensor]]):
    """uint8 images (N, H, W) or (N, C, H, W) -> ``{"input": (C, H, W) normalised with the per-channel
    ``mean`` and ``std`` of [0, 1] pixels, "label"}``, optional horizontal flips (seeded per index)."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        *,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        flip: bool,
        seed: int,
    ) -> None:
        self.images, self.labels, self.flip, self.seed = images, labels, flip, seed
        self.mean, self.std = torch.tensor(mean)[:, None, None], torch.tensor(std)[:, None, None]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image = torch.from_numpy(self.images[index].astype(np.float32) / 255.0)
        if image.dim() == 2:
            image = image[None]  # (1, H, W)
        if self.flip and torch.rand((), generator=torch.Generator().manual_seed(self.seed + index)) < 0.5:
            image = image.flip(-1)
        return {"input": (image - self.mean) / self.std, "label": torch.tensor(self.labels[index])}


def cut_validation(
    images: np.ndarray, labels: np.ndarray, split: Literal["train", "val"], val_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The training arrays' first part (``train``) or their last ``val_size`` items (``val``)."""
    if not 0 <= val_size < len(images):
        raise ConfigError(f"data.val_size={val_size} must be below the {len(images)} training images")
    cut = len(images) - val_size
    return (images[:cut], labels[:cut]) if split == "train" else (images[cut:], labels[cut:])
