"""CIFAR-10/100 from the standard distribution files (Krizhevsky 2009), binary or python version.

Binary version: ``data_batch_{1..5}.bin`` and ``test_batch.bin`` (CIFAR-10: 1 label
byte + 3072 pixel bytes per record; CIFAR-100: coarse and fine label bytes).
Python version: pickled dicts ``{b"data": uint8 (N, 3072), b"labels"/b"fine_labels": [...]}``,
read with an unpickler that admits only the handful of types those files contain,
so a malicious file cannot run code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.errors import InputError

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise InputError(f"refusing to unpickle {module}.{name}: not part of a CIFAR batch file")
        return super().find_class(module, name)


def _records_binary(path: Path, label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    record = label_bytes + 3072
    if raw.size == 0 or raw.size % record:
        raise InputError(f"{path}: {raw.size} bytes is not a whole number of {record}-byte CIFAR records")
    rows = raw.reshape(-1, record)
    return rows[:, label_bytes:].reshape(-1, 3, 32, 32), rows[:, label_bytes - 1].astype(np.int64)


def _records_python(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _SafeUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise InputError(f"{path} is not a CIFAR python batch: {exc}") from None
    if not isinstance(batch, dict) or b"data" not in batch:
        raise InputError(f"{path} is not a CIFAR python batch (no b'data' entry)")
    labels = batch.get(b"labels", batch.get(b"fine_labels"))
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    if labels is None or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise InputError(f"{path}: data {data.shape} and labels do not form a CIFAR batch")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def read_cifar(root: Path, *, train: bool, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 3, 32, 32) uint8, labels (N,) int64) from a CIFAR folder, either version."""
    if num_classes not in (10, 100):
        raise InputError(f"CIFAR has 10 or 100 classes, not {num_classes}")
    if num_classes == 10:
        stems = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    else:
        stems = ["train"] if train else ["test"]
    parts = []
    for stem in stems:
        if (root / f"{stem}.bin").is_file():
            parts.append(_records_binary(root / f"{stem}.bin", 1 if num_classes == 10 else 2))
        elif (root / stem).is_file():
            parts.append(_records_python(root / stem))
        else:
            raise InputError(
                f"{root} has no {stem} or {stem}.bin (CIFAR-{num_classes} python or binary version)"
            )
    images, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    if labels.min() < 0 or labels.max() >= num_classes:
        raise InputError(f"{root}: labels outside [0, {num_classes})")
    return images, labels
