"""What the explorer builds from a run folder (a loaded model, an editing session), kept while the
run's final weights stay the same, for the few runs used last: each holds a model in memory."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from attnlab.runs.rundir import WEIGHTS_FILE

T = TypeVar("T")


class RunCache(Generic[T]):
    """``get(folder)``: ``build(folder)``, rebuilt when ``folder``'s final weights change; the ``size``
    runs used last are kept."""

    def __init__(self, build: Callable[[Path], T], size: int = 4) -> None:
        self._build, self.size = build, size
        self._items: OrderedDict[Path, tuple[float | None, T]] = OrderedDict()

    def get(self, folder: Path) -> T:
        weights = folder / WEIGHTS_FILE
        stamp = weights.stat().st_mtime if weights.is_file() else None
        held = self._items.get(folder)
        if held is None or stamp is None or held[0] != stamp:
            held = (stamp, self._build(folder))
            self._items[folder] = held
        self._items.move_to_end(folder)
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return held[1]
