"""Fashion-MNIST for self-supervised pre-training: augmented views of the training images, and the
plain images a k-NN evaluation reads (a bank of training images, the test set).

Views per training image (``views``):

* ``dino``: DINO's multi-crop (:class:`attnlab.data.multicrop.MultiCrop`, the ``SMALL_IMAGES``
  recipe: 2 global 28 px crops, ``local_crops`` local ones of ``local_size`` px), as
  facebookresearch/dino ``DataAugmentationDINO``;
* ``mae``: one random resized crop of scale (0.2, 1) at 28 px and a horizontal flip, MAE's
  pre-training augmentation (facebookresearch/mae ``main_pretrain.py``: ``RandomResizedCrop(scale=(0.2,
  1.0), interpolation=bicubic)``, ``RandomHorizontalFlip``).

Every view is normalised with the training set's mean and std, as the plain images are.

The training stream is procedural: sample ``i`` is image ``perm_p[i mod N]`` of pass ``p = i // N``
(a fresh seeded permutation per pass), augmented with a generator seeded by ``(seed, i)``. So a
pass never repeats another's crops, and a resumed run draws exactly the crops an uninterrupted one
would (the resumable sampler restarts at the step). Validation and test views are seeded by the
image index alone (the same every time) and are the global crops only (DINO's loss is defined for
any number of crops >= 2; local ones would triple the cost of evaluating).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from attnlab.data._registry import register_datamodule
from attnlab.data.datamodule import DataModule, Split
from attnlab.data.fashion_mnist import CLASSES, DEFAULT_ROOT, MEAN, STD, load_idx_split
from attnlab.data.multicrop import SMALL_IMAGES, MultiCrop, MultiCropConfig
from attnlab.errors import ConfigError, InputError

Views = Literal["dino", "mae"]


@dataclass
class ViewSample:
    crops: list[torch.Tensor]  # each (C, h, w), normalised
    image: torch.Tensor  # (C, H, W) the plain image, normalised
    label: torch.Tensor  # () int64


@dataclass
class ViewBatch:
    """Crops per view (crop-major: ``crops[v]`` is every image's view v), the plain images and labels."""

    crops: list[torch.Tensor]  # each (B, C, h, w)
    images: torch.Tensor  # (B, C, H, W)
    label: torch.Tensor  # (B,)

    @property
    def batch_size(self) -> int:
        return len(self.label)


def collate_views(samples: list[ViewSample]) -> ViewBatch:
    counts = {len(s.crops) for s in samples}
    if len(counts) != 1:
        raise InputError(f"every example must have the same number of views, got {sorted(counts)}")
    crops = [torch.stack(views) for views in zip(*(s.crops for s in samples), strict=True)]
    return ViewBatch(
        crops=crops,
        images=torch.stack([s.image for s in samples]),
        label=torch.stack([s.label for s in samples]),
    )


def view_maker(views: Views, local_crops: int, local_size: int) -> MultiCrop:
    normalise = {"mean": (MEAN,), "std": (STD,)}
    if views == "dino":
        return MultiCrop(
            dataclasses.replace(SMALL_IMAGES, local_crops=local_crops, local_size=local_size, **normalise)
        )
    # MAE: one "global" crop of scale (0.2, 1) with a flip, nothing else
    return MultiCrop(
        MultiCropConfig(
            global_size=28, local_crops=0, global_scale=(0.2, 1.0), jitter_p=0.0, grayscale_p=0.0,
            blur_p=(0.0, 0.0, 0.0), solarize_p=(0.0, 0.0, 0.0), **normalise,
        )
    )  # fmt: skip


class ImageViews(Dataset[ViewSample]):
    """uint8 images (N, H, W) -> :class:`ViewSample`; ``procedural``: an endless stream of passes;
    no ``maker``: no views (the k-NN bank, where augmenting would only cost time)."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        maker: MultiCrop | None,
        views: Views,
        *,
        seed: int,
        procedural: bool,
    ) -> None:
        self.images, self.labels, self.maker, self.views = images, labels, maker, views
        self.seed, self.procedural = seed, procedural
        self._perm: tuple[int, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.images)

    def _image_index(self, i: int) -> int:
        if not self.procedural:
            return i
        n = len(self.images)
        pass_, offset = divmod(i, n)
        if self._perm is None or self._perm[0] != pass_:
            generator = torch.Generator().manual_seed(self.seed * 7_919 + pass_)
            self._perm = (pass_, torch.randperm(n, generator=generator))
        return int(self._perm[1][offset])

    def __getitem__(self, i: int) -> ViewSample:
        index = self._image_index(i)
        raw = torch.from_numpy(self.images[index].astype(np.float32) / 255.0)[None]  # (1, H, W) in [0, 1]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        crops = [] if self.maker is None else self.maker(raw, generator)
        if self.views == "mae":
            crops = crops[:1]  # one view (MultiCrop always makes two "global" crops)
        return ViewSample(crops=crops, image=(raw - MEAN) / STD, label=torch.tensor(int(self.labels[index])))


@register_datamodule("fashion-mnist-ssl")
class FashionMNISTViews(DataModule):
    """Fashion-MNIST as DINO multi-crops or MAE crops for training; plain images for the k-NN
    evaluation (``knn_dataloader``: the first ``knn_size`` training images)."""

    num_classes = 10
    class_names = CLASSES

    def __init__(
        self,
        *,
        seed: int,
        root: str = DEFAULT_ROOT,
        views: Views = "dino",
        local_crops: int = 6,
        local_size: int = 12,
        val_size: int = 1000,  # only the validation loss reads it
        knn_size: int = 5000,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
        if views not in ("dino", "mae"):
            raise ConfigError(f"data.views must be 'dino' or 'mae', got {views!r}")
        if val_size < 0 or knn_size < 1 or local_crops < 0 or local_size < 1:
            raise ConfigError(
                "data.val_size and data.local_crops must be >= 0, data.knn_size and data.local_size >= 1, "
                f"got {val_size}, {local_crops}, {knn_size}, {local_size}"
            )
        self.root, self.views, self.val_size, self.knn_size = Path(root), views, val_size, knn_size
        self.maker = view_maker(views, local_crops, local_size)
        # evaluation losses on the global crops alone: local crops would triple the test's cost
        self.eval_maker = view_maker(views, 0, local_size)

    def collate_fn(self) -> object:  # type: ignore[override]
        return collate_views

    def _train_arrays(self) -> tuple[np.ndarray, np.ndarray, int]:
        images, labels = load_idx_split(self.root, train=True)
        if not 0 <= self.val_size < len(images):
            raise ConfigError(
                f"data.val_size={self.val_size} must be below the {len(images)} training images"
            )
        return images, labels, len(images) - self.val_size

    def build(self, split: Split) -> ImageViews:
        if split == "test":
            images, labels = load_idx_split(self.root, train=False)
            return ImageViews(images, labels, self.eval_maker, self.views, seed=self.seed, procedural=False)
        images, labels, cut = self._train_arrays()
        if split == "train":
            return ImageViews(
                images[:cut], labels[:cut], self.maker, self.views, seed=self.seed, procedural=True
            )
        return ImageViews(
            images[cut:], labels[cut:], self.eval_maker, self.views, seed=self.seed, procedural=False
        )

    def knn_dataloader(self) -> DataLoader[object]:
        """The k-NN bank: the first ``knn_size`` training images (plain; their views are unused)."""
        images, labels, cut = self._train_arrays()
        n = min(self.knn_size, cut)
        bank = ImageViews(images[:n], labels[:n], None, self.views, seed=self.seed, procedural=False)
        return self._loader(bank, batch_size=self.eval_batch_size)
