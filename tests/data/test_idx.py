import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from attnlab.data.fashion_mnist import DEFAULT_ROOT, FashionMNISTData, load_idx_split
from attnlab.data.idx import read_idx
from attnlab.errors import ConfigError, InputError


def write_idx(path: Path, array: np.ndarray, *, code: int = 0x08, compress: bool = False) -> Path:
    """The IDX layout written out by hand from the format's definition."""
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def fake_mnist(root: Path, n_train: int = 30, n_test: int = 10, compress: bool = True) -> None:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        suffix = ".gz" if compress else ""
        write_idx(
            root / f"{prefix}-images-idx3-ubyte{suffix}",
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            compress=compress,
        )
        write_idx(
            root / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(n, dtype=np.uint8) % 10, compress=compress
        )


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_of_hand_written_files(tmp_path: Path, compress: bool):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    name = "x.idx.gz" if compress else "x.idx"
    assert np.array_equal(read_idx(write_idx(tmp_path / name, array, compress=compress)), array)
    ints = np.array([[1, -2], [300000, 4]], dtype=np.int32)
    assert np.array_equal(read_idx(write_idx(tmp_path / "i.idx", ints, code=0x0C)), ints)


def test_bad_files_are_one_line_errors(tmp_path: Path):
    good = write_idx(tmp_path / "g.idx", np.zeros((4, 2), dtype=np.uint8))
    (tmp_path / "trunc.idx").write_bytes(good.read_bytes()[:-1])
    (tmp_path / "magic.idx").write_bytes(b"\x01\x02\x08\x01" + good.read_bytes()[4:])
    (tmp_path / "bad.gz").write_bytes(b"not gzip")
    with pytest.raises(InputError, match="header says"):
        read_idx(tmp_path / "trunc.idx")
    with pytest.raises(InputError, match="magic"):
        read_idx(tmp_path / "magic.idx")
    with pytest.raises(InputError, match="cannot read"):
        read_idx(tmp_path / "bad.gz")
    with pytest.raises(InputError, match="not found"):
        read_idx(tmp_path / "missing.idx")


def test_datamodule_on_generated_files(tmp_path: Path):
    fake_mnist(tmp_path)
    dm = FashionMNISTData(seed=0, root=str(tmp_path), val_size=5, flip=False)
    train, val, test = dm.dataset("train"), dm.dataset("val"), dm.dataset("test")
    assert (len(train), len(val), len(test)) == (25, 5, 10)
    sample = train[3]
    assert sample["input"].shape == (1, 28, 28) and sample["input"].dtype == torch.float32
    assert int(sample["label"]) == 3
    raw = read_idx(tmp_path / "train-images-idx3-ubyte.gz")[3].astype(np.float32) / 255
    torch.testing.assert_close(sample["input"][0] * 0.3530 + 0.2860, torch.from_numpy(raw))
    with pytest.raises(InputError, match="has no t10k-images"):
        FashionMNISTData(seed=0, root=str(tmp_path / "nothing")).dataset("test")
    with pytest.raises(ConfigError):
        FashionMNISTData(seed=0, root=str(tmp_path), val_size=30).dataset("train")


def test_flips_are_deterministic_per_index(tmp_path: Path):
    fake_mnist(tmp_path, compress=False)
    data = FashionMNISTData(seed=1, root=str(tmp_path), val_size=5, flip=True).dataset("train")
    plain = FashionMNISTData(seed=1, root=str(tmp_path), val_size=5, flip=False).dataset("train")
    flipped = [not torch.equal(data[i]["input"], plain[i]["input"]) for i in range(len(data))]
    assert any(flipped) and not all(flipped)
    assert all(torch.equal(data[i]["input"], data[i]["input"]) for i in range(5))


@pytest.mark.skipif(
    not Path(DEFAULT_ROOT).is_dir(), reason="Debian package dataset-fashion-mnist not installed"
)
def test_the_installed_fashion_mnist_has_the_published_sizes():
    images, labels = load_idx_split(Path(DEFAULT_ROOT), train=True)
    test_images, test_labels = load_idx_split(Path(DEFAULT_ROOT), train=False)
    assert images.shape == (60000, 28, 28) and test_images.shape == (10000, 28, 28)
    assert np.bincount(labels).tolist() == [6000] * 10 and np.bincount(test_labels).tolist() == [1000] * 10
