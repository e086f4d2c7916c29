"""CIFAR-10 from a folder the user has (binary or python version), as a datamodule.

Nothing is downloaded: ``--data.root`` must point at the extracted ``cifar-10-batches-bin`` or
``cifar-10-batches-py`` folder (:func:`attnlab.data.cifar.read_cifar` reads either). Items are
``{"input": (3, 32, 32) normalised with the training set's channel statistics, "label"}``;
validation is the last ``val_size`` training images, as Fashion-MNIST's. The collaborative-GAN
thesis (seed 001) trains on CIFAR-10 at 64x64: ``attnlab run madgan-fmnist --data.name cifar10
--data.root PATH --model.channels 3`` (the GAN task converts the images, :mod:`attnlab.train.gan_data`).
"""

from __future__ import annotations

from pathlib import Path

from attnlab.data._registry import register_datamodule
from attnlab.data.cifar import read_cifar
from attnlab.data.datamodule import DataModule, Split
from attnlab.data.image_array import ImageArray, cut_validation
from attnlab.errors import ConfigError, InputError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Per-channel mean and standard deviation of the 50,000 training images in [0, 1].
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


@register_datamodule("cifar10")
class CIFAR10Data(DataModule):
    """CIFAR-10 32x32 colour images, 10 classes, from ``root``; validation = the last ``val_size``
    training images."""

    num_classes = 10
    class_names = CLASSES

    def __init__(
        self,
        *,
        seed: int,
        root: str = "",
        val_size: int = 5000,
        flip: bool = True,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
        if not root:
            raise ConfigError(
                "data.name cifar10 needs --data.root: the extracted CIFAR-10 folder "
                "(cifar-10-batches-bin or cifar-10-batches-py; nothing is downloaded)"
            )
        if not Path(root).is_dir():
            raise InputError(f"data.root {root} is not a folder")
        if val_size < 0:
            raise ConfigError(f"data.val_size must be >= 0, got {val_size}")
        self.root, self.val_size, self.flip = Path(root), val_size, flip

    def build(self, split: Split) -> ImageArray:
        if split == "test":
            images, labels = read_cifar(self.root, train=False)
        else:
            images, labels = cut_validation(*read_cifar(self.root, train=True), split, self.val_size)
        flip = self.flip and split == "train"
        return ImageArray(images, labels, mean=MEAN, std=STD, flip=flip, seed=self.seed)
