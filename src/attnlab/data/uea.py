"""UEA/UCR classification problems from ``.ts`` files: the ones aeon ships, or any on disk.

``problem`` names a problem (``BasicMotions``: smartwatch accelerometer and gyroscope, 6
channels x 100 steps at 10 Hz, 4 activities, 40 + 40 series); its ``<problem>_TRAIN.ts`` and
``_TEST.ts`` are read by :func:`attnlab.data.ts_format.read_ts` from ``root`` (``root/<problem>/``
or ``root/``), or by default from the data folder of the installed aeon package (the
``signals`` extra; nothing is downloaded). Which problems aeon ships: :func:`shipped_problems`.

Splits: ``val_per_class`` training series of each class (chosen by the seed) are held out for
validation; the rest train, the test file tests. Training examples are random ``window``-step
crops of the training series, sample i a pure function of (seed, i) (the thesis's fixed-length
sampling of variable-length signals); validation and test give whole series, which the
signal models classify with sliding windows. Channels are standardised with the training
series' mean and standard deviation. A series shorter than the window or with missing
(NaN) samples is an error, or, with ``skip_bad``, dropped and counted in ``skipped``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from attnlab.data._registry import register_datamodule
from attnlab.data.datamodule import DataModule, Split
from attnlab.data.ts_format import TsData, read_ts
from attnlab.errors import ConfigError, InputError

log = logging.getLogger(__name__)


def aeon_data_dir() -> Path:
    """The folder of ``.ts`` files inside the installed aeon package."""
    try:
        import aeon
    except ModuleNotFoundError:
        raise ConfigError(
            "the UEA/UCR problems shipped with aeon need the 'signals' extra (no module 'aeon'): "
            "pip install 'attnlab[signals]', or set data.root to a folder of .ts files"
        ) from None
    return Path(aeon.__file__).parent / "datasets" / "data"


def shipped_problems(root: Path | None = None) -> list[str]:
    """Problems with both ``_TRAIN.ts`` and ``_TEST.ts`` under ``root`` (default: aeon's)."""
    folder = root or aeon_data_dir()
    return sorted(
        p.name
        for p in folder.iterdir()
        if (p / f"{p.name}_TRAIN.ts").is_file() and (p / f"{p.name}_TEST.ts").is_file()
    )


def problem_file(problem: str, split: str, root: Path | None) -> Path:
    folder = root or aeon_data_dir()
    for candidate in (folder / problem / f"{problem}_{split}.ts", folder / f"{problem}_{split}.ts"):
        if candidate.is_file():
            return candidate
    known = shipped_problems(folder) if folder.is_dir() else []
    raise ConfigError(f"no {problem}_{split}.ts under {folder}; problems there: {', '.join(known) or 'none'}")


@dataclass
class Series:
    """Standardised series of one split: ``signals[i]`` (channels, steps) float32, ``labels`` (N,)."""

    signals: list[torch.Tensor]
    labels: torch.Tensor


class WindowCrops(Dataset[dict[str, torch.Tensor]]):
    """Endless random ``window``-step crops: sample i is a pure function of (seed, i)."""

    procedural = True

    def __init__(self, series: Series, window: int, seed: int) -> None:
        self.series, self.window, self.seed = series, window, seed

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        i = int(torch.randint(len(self.series.signals), (), generator=gen))
        signal = self.series.signals[i]
        start = int(torch.randint(signal.shape[1] - self.window + 1, (), generator=gen))
        return {"input": signal[:, start : start + self.window], "label": self.series.labels[i]}


class WholeSeries(Dataset[dict[str, torch.Tensor]]):
    def __init__(self, series: Series) -> None:
        self.series = series

    def __len__(self) -> int:
        return len(self.series.signals)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input": self.series.signals[index], "label": self.series.labels[index]}


@register_datamodule("uea")
class UEAData(DataModule):
    """UEA/UCR problems from .ts files (aeon's by default): crops to train, whole series to test."""

    def __init__(
        self,
        *,
        seed: int,
        problem: str = "BasicMotions",
        root: str | None = None,
        window: int = 64,
        val_per_class: int = 2,
        skip_bad: bool = False,
        batch_size: int = 128,
        eval_batch_size: int = 64,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
        if window < 2 or val_per_class < 0:
            raise ConfigError(
                f"data.window must be >= 2 and val_per_class >= 0, got {window}, {val_per_class}"
            )
        self.problem, self.window, self.val_per_class, self.skip_bad = (
            problem,
            window,
            val_per_class,
            skip_bad,
        )
        self.root = Path(root) if root is not None else None
        self.skipped: dict[str, int] = {}
        train = self._checked(read_ts(problem_file(problem, "TRAIN", self.root)), "TRAIN")
        test = self._checked(read_ts(problem_file(problem, "TEST", self.root)), "TEST")
        if test.class_names != train.class_names or test.channels != train.channels:
            raise InputError(
                f"{problem}: the test file's classes or channels differ from the training file's"
            )
        self.class_names, self.num_classes, self.in_channels = (
            train.class_names,
            len(train.class_names),
            train.channels,
        )
        fit, val = self._hold_out(train.labels)
        stacked = np.concatenate([train.series[i] for i in fit], axis=1)  # (C, all training steps)
        self.mean, self.std = stacked.mean(axis=1, keepdims=True), stacked.std(axis=1, keepdims=True) + 1e-8
        self._raw = {"train": (train, fit), "val": (train, val), "test": (test, np.arange(len(test.series)))}

    def _checked(self, data: TsData, split: str) -> TsData:
        """The series that fit the window and have no NaN; errors name the first bad one."""
        keep = []
        for i, s in enumerate(data.series):
            problem = (
                f"has {s.shape[1]} steps, shorter than the window ({self.window})"
                if s.shape[1] < self.window
                else "has missing (NaN) samples"
                if not np.isfinite(s).all()
                else None
            )
            if problem is None:
                keep.append(i)
            elif not self.skip_bad:
                raise InputError(
                    f"series {i} of {data.problem}_{split}.ts {problem} (skip_bad drops such series)"
                )
        self.skipped[split] = len(data.series) - len(keep)
        if self.skipped[split]:
            log.warning(
                "%s_%s.ts: skipped %d bad series of %d",
                data.problem,
                split,
                self.skipped[split],
                len(data.series),
            )
        if not keep:
            raise InputError(f"{data.problem}_{split}.ts has no usable series (window {self.window})")
        return TsData(data.problem, [data.series[i] for i in keep], data.labels[keep], data.class_names)

    def _hold_out(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the training series kept for fitting and held out for validation."""
        order = np.random.default_rng(self.seed).permutation(len(labels))
        val = np.concatenate(
            [order[labels[order] == c][: self.val_per_class] for c in range(labels.max() + 1)]
        )
        fit = np.setdiff1d(np.arange(len(labels)), val)
        if len(fit) == 0 or (self.val_per_class and len(val) == 0):
            raise ConfigError(f"{self.problem}: val_per_class={self.val_per_class} leaves no training series")
        return fit, np.sort(val)

    upload = "signal"

    def from_signal(self, signal: np.ndarray) -> torch.Tensor:
        """A series (C, L) standardised as the test series (the training series' channel statistics)."""
        if signal.shape[0] != self.in_channels:
            raise InputError(
                f"the signal has {signal.shape[0]} channels; {self.problem}'s series have {self.in_channels}"
            )
        if signal.shape[1] < self.window:
            raise InputError(f"the signal has {signal.shape[1]} steps; this run needs at least {self.window}")
        return torch.from_numpy((signal - self.mean) / self.std).float()

    def raw(self, split: Split) -> tuple[list[np.ndarray], np.ndarray]:
        """The split's series as read (not standardised) and their labels: for outside baselines."""
        data, index = self._raw[split]
        return [data.series[i] for i in index], data.labels[index]

    def series(self, split: Split) -> Series:
        signals, labels = self.raw(split)
        scaled = [torch.from_numpy((s - self.mean) / self.std).float() for s in signals]
        return Series(scaled, torch.from_numpy(labels))

    def build(self, split: Split) -> Dataset[dict[str, torch.Tensor]]:
        series = self.series(split)
        if split == "train":
            return WindowCrops(series, self.window, self.seed)
        if not series.signals:  # val_per_class 0: validate on the training series
            series = self.series("train")
        lengths = {s.shape[1] for s in series.signals}
        if len(lengths) > 1 and self.eval_batch_size > 1:
            raise ConfigError(
                f"{self.problem} {split} series differ in length ({min(lengths)}-{max(lengths)} steps): "
                "set data.eval_batch_size 1"
            )
        return WholeSeries(series)
