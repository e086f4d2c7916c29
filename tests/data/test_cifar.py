import pickle
from pathlib import Path

import numpy as np
import pytest

from attnlab.data.cifar import read_cifar
from attnlab.errors import InputError


def batch(n: int, offset: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(offset)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), [(offset + i) % 10 for i in range(n)]


def write_binary(root: Path, stem: str, data: np.ndarray, labels: list[int]) -> None:
    rows = np.concatenate([np.asarray(labels, dtype=np.uint8)[:, None], data], axis=1)
    rows.tofile(root / f"{stem}.bin")


def write_python(root: Path, stem: str, data: np.ndarray, labels: list[int]) -> None:
    (root / stem).write_bytes(pickle.dumps({b"data": data, b"labels": labels, b"batch_label": b"x"}))


@pytest.mark.parametrize("writer", [write_binary, write_python])
def test_both_versions_read_the_same_images(tmp_path: Path, writer):
    expected_images, expected_labels = [], []
    for i, stem in enumerate([f"data_batch_{k}" for k in range(1, 6)]):
        data, labels = batch(4, i * 4)
        writer(tmp_path, stem, data, labels)
        expected_images.append(data.reshape(-1, 3, 32, 32))
        expected_labels += labels
    writer(tmp_path, "test_batch", *batch(3, 100))
    images, labels = read_cifar(tmp_path, train=True)
    assert images.shape == (20, 3, 32, 32) and images.dtype == np.uint8
    assert np.array_equal(images, np.concatenate(expected_images)) and labels.tolist() == expected_labels
    # channel-planar layout: the first 1024 bytes of a record are the red plane
    assert np.array_equal(images[0, 0].ravel(), expected_images[0][0, 0].ravel())
    assert read_cifar(tmp_path, train=False)[0].shape == (3, 3, 32, 32)


def test_malicious_pickle_is_refused(tmp_path: Path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}))
    with pytest.raises(InputError, match=r"refusing to unpickle builtins\.print"):
        read_cifar(tmp_path, train=False)


def test_bad_files(tmp_path: Path):
    with pytest.raises(InputError, match="has no test_batch"):
        read_cifar(tmp_path, train=False)
    (tmp_path / "test_batch.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match="whole number"):
        read_cifar(tmp_path, train=False)
    write_binary(tmp_path, "test_batch", *batch(2, 0))
    (tmp_path / "test_batch.bin").write_bytes(
        (tmp_path / "test_batch.bin").read_bytes()[:-3073] + b"\x0c" + b"\x00" * 3072
    )
    with pytest.raises(InputError, match="labels outside"):
        read_cifar(tmp_path, train=False)


def write_cifar10(root: Path, per_batch: int = 4, test: int = 3) -> Path:
    """A tiny CIFAR-10 folder in the binary version: 5 training batches and a test batch."""
    root.mkdir(parents=True, exist_ok=True)
    for k in range(1, 6):
        write_binary(root, f"data_batch_{k}", *batch(per_batch, k * per_batch))
    write_binary(root, "test_batch", *batch(test, 100))
    return root


def test_the_datamodule_normalises_per_channel_and_splits_validation(tmp_path: Path):
    from attnlab.data.cifar_data import MEAN, STD, CIFAR10Data

    write_cifar10(tmp_path)
    data = CIFAR10Data(seed=0, root=str(tmp_path), val_size=5, flip=False)
    train, val, test = data.build("train"), data.build("val"), data.build("test")
    assert (len(train), len(val), len(test)) == (15, 5, 3)
    raw, labels = read_cifar(tmp_path, train=True)
    item = val[0]  # the first validation image is training image 15
    mean, std = np.array(MEAN)[:, None, None], np.array(STD)[:, None, None]
    expected = (raw[15].astype(np.float64) / 255 - mean) / std
    np.testing.assert_allclose(item["input"].numpy(), expected, rtol=0, atol=1e-5)
    assert int(item["label"]) == labels[15]


def test_the_datamodule_without_a_folder_is_one_line(tmp_path: Path):
    from attnlab.data.cifar_data import CIFAR10Data
    from attnlab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"needs --data\.root"):
        CIFAR10Data(seed=0)
    with pytest.raises(InputError, match="is not a folder"):
        CIFAR10Data(seed=0, root=str(tmp_path / "missing"))
