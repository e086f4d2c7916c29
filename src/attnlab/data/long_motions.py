"""Long signals made of several recordings of one motion, for the sliding-window path.

A UEA/UCR problem's series are short, fixed-length recordings (BasicMotions: 10 s). Seed
001's signals are long and of varying length, and a classifier reads them 64 steps at a
time. This set joins ``segments`` recordings of one class, drawn from the same split,
with ``transition`` steps between consecutive recordings that blend linearly from the end
value of one into the start value of the next (a change of motion, not a jump). Each long
signal has its class's label. Long signal i of a split is a pure function of (seed, split,
i); the training split crops ``window`` steps from its long signals as :class:`UEAData` does.
"""

from __future__ import annotations

import itertools

import numpy as np

from attnlab.data._registry import register_datamodule
from attnlab.data.datamodule import Split
from attnlab.data.uea import UEAData
from attnlab.errors import ConfigError


def join_with_transitions(parts: list[np.ndarray], transition: int) -> np.ndarray:
    """(C, L_k) recordings -> (C, sum L_k + transition * (k - 1)) joined by linear blends."""
    pieces = [parts[0]]
    for prev, nxt in itertools.pairwise(parts):
        t = np.arange(1, transition + 1) / (transition + 1)  # strictly between the two end points
        pieces += [prev[:, -1:] * (1 - t) + nxt[:, :1] * t, nxt]  # (C, transition), (C, L)
    return np.concatenate(pieces, axis=1)


@register_datamodule("uea-long")
class LongMotionsData(UEAData):
    """Long signals: ``segments`` same-class recordings of a UEA/UCR problem joined by transitions."""

    def __init__(
        self,
        *,
        seed: int,
        problem: str = "BasicMotions",
        root: str | None = None,
        window: int = 64,
        val_per_class: int = 2,
        skip_bad: bool = False,
        segments: int = 3,
        transition: int = 20,
        signals_per_class: int = 10,
        batch_size: int = 128,
        eval_batch_size: int = 64,
        num_workers: int = 0,
    ) -> None:
        if segments < 1 or transition < 0 or signals_per_class < 1:
            raise ConfigError("uea-long needs segments >= 1, transition >= 0, signals_per_class >= 1")
        self.segments, self.transition, self.signals_per_class = segments, transition, signals_per_class
        super().__init__(
            seed=seed,
            problem=problem,
            root=root,
            window=window,
            val_per_class=val_per_class,
            skip_bad=skip_bad,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
        )

    def raw(self, split: Split) -> tuple[list[np.ndarray], np.ndarray]:
        series, labels = super().raw(split)
        rng = np.random.default_rng([self.seed, ("train", "val", "test").index(split)])
        signals, out_labels = [], []
        for c in range(self.num_classes):
            members = np.flatnonzero(labels == c)
            if len(members) == 0:
                continue
            for _ in range(self.signals_per_class):
                chosen = rng.choice(members, size=self.segments, replace=len(members) < self.segments)
                signals.append(join_with_transitions([series[i] for i in chosen], self.transition))
                out_labels.append(c)
        return signals, np.asarray(out_labels, dtype=np.int64)
