"""A run's curves, read from its TensorBoard logs (``tb/``), cached until the logs change."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.directory_watcher import DirectoryDeletedError
from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

MAX_POINTS = 2000  # per curve: enough for a plot; longer curves are thinned evenly

Curves = dict[str, list[tuple[int, float]]]


def _stamp(tb: Path) -> tuple[tuple[str, float, int], ...]:
    return tuple(
        sorted((p.name, p.stat().st_mtime, p.stat().st_size) for p in tb.glob("events.out.tfevents.*"))
    )


def _thin(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    if len(points) <= MAX_POINTS:
        return points
    stride = len(points) / MAX_POINTS
    return [points[int(i * stride)] for i in range(MAX_POINTS - 1)] + [points[-1]]


class ScalarCache:
    def __init__(self) -> None:
        self._cache: dict[Path, tuple[tuple[tuple[str, float, int], ...], Curves]] = {}

    def curves(self, run: Path) -> Curves:
        """Tag -> [(step, value)] of every scalar the run logged ({} without logs)."""
        tb = run / "tb"
        if not tb.is_dir():
            return {}
        try:
            stamp = _stamp(tb)
        except OSError:  # a log removed while listed: as if there were none
            return {}
        cached = self._cache.get(tb)
        if cached is None or cached[0] != stamp:
            accumulator = EventAccumulator(str(tb), size_guidance={SCALARS: 0})
            try:
                accumulator.Reload()
            except (OSError, DirectoryDeletedError):  # the run folder was removed meanwhile
                return {}
            curves = {
                tag: _thin([(e.step, float(e.value)) for e in accumulator.Scalars(tag)])
                for tag in sorted(accumulator.Tags()[SCALARS])
            }
            cached = (stamp, curves)
            self._cache[tb] = cached
        return cached[1]
