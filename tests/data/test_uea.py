"""UEA/UCR datamodules on problems the tests write: splits, standardisation, crops, bad series,
and the long signals joined by transitions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from attnlab.data.long_motions import LongMotionsData, join_with_transitions
from attnlab.data.uea import UEAData
from attnlab.errors import ConfigError, InputError

HEADER = "@problemName Toy\n@timeStamps false\n@dimensions 2\n@classLabel true a b\n@data\n"


def series_line(rng: np.random.Generator, length: int, label: str, nan: bool = False) -> str:
    values = rng.normal(size=(2, length)).round(3).astype(str)
    if nan:
        values[1, 3] = "?"
    return ":".join(",".join(row) for row in values) + f":{label}\n"


def write_problem(
    root: Path, train_lengths: list[int], test_lengths: list[int], nan_test: int | None = None
) -> Path:
    rng = np.random.default_rng(0)
    (root / "Toy").mkdir(parents=True)
    for split, lengths in (("TRAIN", train_lengths), ("TEST", test_lengths)):
        lines = [
            series_line(rng, n, "ab"[i % 2], nan=(split == "TEST" and i == nan_test))
            for i, n in enumerate(lengths)
        ]
        (root / "Toy" / f"Toy_{split}.ts").write_text(HEADER + "".join(lines))
    return root


def test_splits_standardisation_and_crops(tmp_path: Path) -> None:
    root = write_problem(tmp_path, [20] * 8, [20] * 4)
    data = UEAData(seed=3, problem="Toy", root=str(root), window=8, val_per_class=1)
    train_raw, train_labels = data.raw("train")
    _, val_labels = data.raw("val")
    assert len(train_raw) == 6 and sorted(val_labels.tolist()) == [0, 1]  # one per class held out
    stacked = torch.cat(data.series("train").signals, dim=1)  # (2, steps)
    torch.testing.assert_close(stacked.mean(1), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(stacked.std(1, unbiased=False), torch.ones(2), atol=1e-4, rtol=0)
    crops = data.dataset("train")
    a, b = crops[11], crops[11]
    assert a["input"].shape == (2, 8) and torch.equal(a["input"], b["input"])  # a pure function of i
    # every crop is a window of the training series with that label
    for i in range(20):
        sample = crops[i]
        hits = [
            label
            for signal, label in zip(data.series("train").signals, train_labels, strict=True)
            for s in range(13)
            if torch.equal(signal[:, s : s + 8], sample["input"])
        ]
        assert hits and all(h == sample["label"] for h in hits)
    test = data.dataset("test")
    assert len(test) == 4 and test[0]["input"].shape == (2, 20)


def test_short_and_nan_series_fail_in_one_line_or_are_skipped_and_counted(tmp_path: Path) -> None:
    root = write_problem(tmp_path, [20] * 4 + [5], [20, 20, 20], nan_test=1)
    with pytest.raises(
        InputError, match=r"series 4 of Toy_TRAIN\.ts has 5 steps, shorter than the window \(8\)"
    ):
        UEAData(seed=0, problem="Toy", root=str(root), window=8, val_per_class=0)
    data = UEAData(seed=0, problem="Toy", root=str(root), window=8, val_per_class=0, skip_bad=True)
    assert data.skipped == {"TRAIN": 1, "TEST": 1}
    assert len(data.dataset("test")) == 2
    with pytest.raises(InputError, match=r"series 1 of Toy_TEST\.ts has missing"):
        UEAData(seed=0, problem="Toy", root=str(root), window=4, val_per_class=0)


def test_variable_lengths_need_batch_size_one_and_unknown_problems_are_named(tmp_path: Path) -> None:
    root = write_problem(tmp_path, [20] * 4, [20, 30])
    data = UEAData(seed=0, problem="Toy", root=str(root), window=8, val_per_class=0)
    with pytest.raises(ConfigError, match=r"differ in length .*eval_batch_size 1"):
        data.dataset("test")
    data = UEAData(seed=0, problem="Toy", root=str(root), window=8, val_per_class=0, eval_batch_size=1)
    assert [s["input"].shape[1] for s in data.dataset("test")] == [20, 30]
    with pytest.raises(ConfigError, match=r"no Toi_TRAIN\.ts .*problems there: Toy"):
        UEAData(seed=0, problem="Toi", root=str(root))


def test_join_with_transitions_by_hand() -> None:
    a, b = np.array([[0.0, 1.0]]), np.array([[4.0, 5.0, 6.0]])
    np.testing.assert_allclose(join_with_transitions([a, b], 3), [[0, 1, 1.75, 2.5, 3.25, 4, 5, 6]])
    np.testing.assert_array_equal(join_with_transitions([a, b], 0), [[0, 1, 4, 5, 6]])


def test_long_signals_join_same_class_recordings(tmp_path: Path) -> None:
    root = write_problem(tmp_path, [20] * 8, [20] * 4)
    data = LongMotionsData(
        seed=0,
        problem="Toy",
        root=str(root),
        window=8,
        val_per_class=1,
        segments=3,
        transition=5,
        signals_per_class=2,
    )
    signals, labels = data.raw("test")
    assert labels.tolist() == [0, 0, 1, 1] and all(s.shape == (2, 70) for s in signals)
    test_series, test_labels = UEAData.raw(data, "test")
    for signal, label in zip(signals, labels, strict=True):
        for k in range(3):  # each segment is a test recording of the same class
            part = signal[:, 25 * k : 25 * k + 20]
            assert any(
                np.array_equal(part, s) and y == label for s, y in zip(test_series, test_labels, strict=True)
            )
    assert np.array_equal(data.raw("test")[0][0], signals[0])  # deterministic
