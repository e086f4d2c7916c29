"""Fashion-MNIST (Xiao et al. 2017, arXiv:1708.07747) from its standard IDX files.

Debian's ``dataset-fashion-mnist`` package installs them under
``/usr/share/datasets/fashion-mnist/`` (``scripts/setup.sh`` installs it where apt
is available); any folder with the four files works (``--data.root``). MNIST
itself has the same layout, so the same module reads it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from attnlab.data._registry import register_datamodule
from attnlab.data.datamodule import DataModule, Split
from attnlab.data.idx import find_idx, read_idx
from attnlab.data.image_array import ImageArray, cut_validation
from attnlab.errors import ConfigError, InputError

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MEAN, STD = 0.2860, 0.3530  # of the training images, scaled to [0, 1]


def load_idx_split(root: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,) int64) of the train or test files."""
    prefix = "train" if train else "t10k"
    images = read_idx(find_idx(root, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find_idx(root, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise InputError(f"{root}: {prefix} images {images.shape} and labels {labels.shape} do not match")
    return images, labels.astype(np.int64)


@register_datamodule("fashion-mnist")
class FashionMNISTData(DataModule):
    """Fashion-MNIST 28x28 grey images, 10 classes; validation = the last ``val_size`` training images."""

    num_classes = 10
    class_names = CLASSES  # label -> name, for reports

    def __init__(
        self,
        *,
        seed: int,
        root: str = DEFAULT_ROOT,
        val_size: int = 5000,
        flip: bool = True,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
        if val_size < 0:
            raise ConfigError(f"data.val_size must be >= 0, got {val_size}")
        self.root, self.val_size, self.flip = Path(root), val_size, flip

    upload = "picture"

    def from_picture(self, picture: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 RGB -> (1, 28, 28) as the test images: grey, resized (area), normalised
        (Fashion-MNIST draws garments light on black; a picture is taken as it is)."""
        grey = Image.fromarray(picture).convert("L").resize((28, 28), Image.Resampling.BOX)
        image = torch.from_numpy(np.asarray(grey, dtype=np.float32) / 255.0)[None]  # (1, 28, 28)
        return (image - MEAN) / STD

    def build(self, split: Split) -> ImageArray:
        if split == "test":
            images, labels = load_idx_split(self.root, train=False)
        else:
            images, labels = cut_validation(*load_idx_split(self.root, train=True), split, self.val_size)
        flip = self.flip and split == "train"
        return ImageArray(images, labels, mean=(MEAN,), std=(STD,), flip=flip, seed=self.seed)
