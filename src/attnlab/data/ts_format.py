"""The ``.ts`` format of the UEA/UCR time-series classification archive (sktime/aeon's text format).

Header lines start with ``@`` (``@problemName``, ``@timeStamps``, ``@missing``, ``@univariate``,
``@dimensions``, ``@equalLength``, ``@seriesLength``, ``@classLabel true <labels>``), comments
with ``#`` (or ``%``, as some archive files have); ``@data`` ends the header. Each data line
is one series: its channels separated by ``:``, the values of a channel by ``,``, ``?`` for a
missing value (NaN), and the class label as the last ``:`` field when ``@classLabel`` is true.
Channels of one series have one length; series may differ in length. Time-stamped data
(``@timeStamps true``) is not supported. Every problem is one line naming the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnlab.errors import InputError

_COMMENTS = ("#", "%")
_FLAGS = ("timestamps", "missing", "univariate", "equallength", "classlabel", "targetlabel")


@dataclass
class TsData:
    """The series of one ``.ts`` file: ``series[i]`` is (channels, steps_i) float64."""

    problem: str
    series: list[np.ndarray]
    labels: np.ndarray  # (N,) int64 index into class_names
    class_names: tuple[str, ...]

    @property
    def channels(self) -> int:
        return self.series[0].shape[0]

    @property
    def lengths(self) -> list[int]:
        return [s.shape[1] for s in self.series]


def _flag(value: str, where: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise InputError(f"{where}: expected true or false, got {value!r}")
    return value.lower() == "true"


def _parse_header(lines: list[str], path: Path) -> tuple[dict[str, str], tuple[str, ...], int]:
    """Header fields (lower-case keys), the class labels, and the index of the first data line."""
    fields: dict[str, str] = {}
    labels: tuple[str, ...] = ()
    for n, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith(_COMMENTS):
            continue
        where = f"{path}:{n + 1}"
        if not line.startswith("@"):
            raise InputError(f"{where}: data before @data (malformed .ts header)")
        key, _, value = line[1:].partition(" ")
        key, value = key.lower(), value.strip()
        if key == "data":
            if "targetlabel" in fields:
                raise InputError(f"{path}: a regression file (@targetLabel), not a classification file")
            if "classlabel" not in fields:
                raise InputError(f"{path}: malformed .ts header: no @classLabel line before @data")
            return fields, labels, n + 1
        if key in _FLAGS and not value:
            raise InputError(f"{where}: @{key} needs a value (malformed .ts header)")
        if key == "classlabel":
            flag, *labels_list = value.split()
            if _flag(flag, where) and not labels_list:
                raise InputError(f"{where}: @classLabel true must list the class labels")
            labels = tuple(labels_list)
        elif key in ("timestamps", "missing", "univariate", "equallength"):
            _flag(value, where)
        elif key in ("dimensions", "serieslength") and not value.isdigit():
            raise InputError(f"{where}: @{key} must be a whole number, got {value!r}")
        fields[key] = value
    raise InputError(f"{path}: malformed .ts header: no @data line")


def _parse_series(text: str, channels: int | None, where: str) -> np.ndarray:
    dims = text.split(":")
    if channels is not None and len(dims) != channels:
        raise InputError(f"{where}: {len(dims)} channels, the header says {channels}")
    try:
        values = [[float("nan") if v.strip() == "?" else float(v) for v in d.split(",")] for d in dims]
    except ValueError as exc:
        raise InputError(f"{where}: not a number ({exc})") from None
    if len({len(v) for v in values}) != 1:
        raise InputError(f"{where}: channels of one series have different lengths {[len(v) for v in values]}")
    return np.asarray(values, dtype=np.float64)  # (channels, steps)


def read_ts(path: Path) -> TsData:
    """Every labelled series of a ``.ts`` classification file; one-line errors for bad files."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f".ts file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read .ts file {path}: {exc}") from None
    fields, class_names, first = _parse_header(lines, path)
    if fields.get("timestamps", "false").lower() == "true":
        raise InputError(f"{path}: time-stamped .ts data is not supported")
    if not class_names:
        raise InputError(f"{path}: not a classification file (@classLabel false)")
    channels = int(fields["dimensions"]) if "dimensions" in fields else None
    if channels is None and fields.get("univariate", "").lower() == "true":
        channels = 1
    index = {name: i for i, name in enumerate(class_names)}
    series, labels = [], []
    for n in range(first, len(lines)):
        line = lines[n].strip()
        if not line or line.startswith(_COMMENTS):
            continue
        where = f"{path}:{n + 1}"
        body, _, label = line.rpartition(":")
        if label not in index:
            raise InputError(f"{where}: class label {label!r} is not one of {list(class_names)}")
        values = _parse_series(body, channels, where)
        channels = values.shape[0]  # every later series must match the first
        series.append(values)
        labels.append(index[label])
    if not series:
        raise InputError(f"{path}: no series after @data")
    problem = fields.get("problemname", path.stem)
    return TsData(problem, series, np.asarray(labels, dtype=np.int64), class_names)
