"""The .ts reader on files the tests write (hand values, one-line errors) and against aeon's loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attnlab.data.ts_format import read_ts
from attnlab.errors import InputError

HEADER = """# a comment
% an ARFF-style comment
@problemName Tiny
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down
@data
"""


def write(tmp_path: Path, text: str, name: str = "Tiny_TRAIN.ts") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_channels_lengths_missing_values_and_labels(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "1,2,3:4,5,6:down\n\n0.5,?:-1,2e1:up\n")
    data = read_ts(path)
    assert data.problem == "Tiny" and data.class_names == ("up", "down")
    assert data.labels.tolist() == [1, 0] and data.lengths == [3, 2] and data.channels == 2
    np.testing.assert_array_equal(data.series[0], [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(data.series[1], [[0.5, np.nan], [-1, 20]])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEADER.replace("@data\n", ""), "no @data line"),
        (HEADER.replace("@classLabel true up down\n", ""), "no @classLabel line before @data"),
        (HEADER.replace("@missing true", "@missing perhaps"), "expected true or false"),
        (HEADER.replace("@dimensions 2", "@dimensions two"), "@dimensions must be a whole number"),
        (HEADER.replace("@classLabel true up down", "@classLabel true"), "must list the class labels"),
        ("1,2:3,4:up\n" + HEADER, "data before @data"),
        (HEADER.replace("@timeStamps false", "@timeStamps true") + "1:2:up\n", "time-stamped"),
        (HEADER.replace("@classLabel true up down", "@targetLabel true"), "regression file"),
        (HEADER + "1,2:3,4:sideways\n", "class label 'sideways' is not one of"),
        (HEADER + "1,2:up\n", "1 channels, the header says 2"),
        (HEADER + "1,x:3,4:up\n", "not a number"),
        (HEADER + "1,2:3:up\n", "different lengths"),
        (HEADER, "no series after @data"),
    ],
)
def test_malformed_files_fail_with_one_line_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=message) as err:
        read_ts(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_ts(tmp_path / "nothing.ts")


def test_matches_aeons_loader_on_basic_motions() -> None:
    datasets = pytest.importorskip("aeon.datasets")
    from attnlab.data.uea import problem_file

    for split in ("train", "test"):
        X, y = datasets.load_basic_motions(split=split)
        data = read_ts(problem_file("BasicMotions", split.upper(), None))
        np.testing.assert_array_equal(np.stack(data.series), X)
        # aeon lower-cases the labels
        assert [data.class_names[i].lower() for i in data.labels] == list(y)
