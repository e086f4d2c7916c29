"""Training time summed over a run's segments.

A run killed or interrupted and then resumed trains in several processes; the report's wall
time is the sum of them. The clock's state travels inside each checkpoint, so the time up to
the last checkpoint survives a ``kill -9``. A killed process's time after its last checkpoint is
not counted; the resumed process redoing that work is.
"""

from __future__ import annotations

import time
from typing import Any


class TrainClock:
    """``clock.seconds``: this segment's time since :meth:`start` plus the earlier segments'."""

    def __init__(self) -> None:
        self._before = 0.0  # seconds of the earlier segments, up to their last checkpoint
        self._segments_before = 0
        self._start = time.perf_counter()

    def start(self) -> None:
        self._start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return self._before + time.perf_counter() - self._start

    @property
    def segments(self) -> int:
        """How many processes trained this run, this one included."""
        return self._segments_before + 1

    def state_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "segments": self.segments}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._before = float(state["seconds"])
        self._segments_before = int(state["segments"])
