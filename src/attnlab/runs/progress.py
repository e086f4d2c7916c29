"""A rich progress bar over training steps for runners outside Lightning (the same look as
the Lightning runner's: ``train``, bar, steps done / total, elapsed, remaining, metrics)."""

from __future__ import annotations

from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class StepProgress:
    """``with StepProgress(total, start, enabled) as bar: bar.update(step, loss=0.3)``."""

    def __init__(self, total: int, *, start: int = 0, enabled: bool = True, description: str = "train"):
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[stats]}"),
            disable=not enabled,
        )
        self._task = self._progress.add_task(description, total=total, completed=start, stats="")

    def __enter__(self) -> StepProgress:
        self._progress.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.__exit__(kind, exc, tb)

    def update(self, step: int, **stats: float) -> None:
        if not self.enabled:
            return
        if stats:
            text = " ".join(f"{k}={v:.3g}" for k, v in stats.items())
            self._progress.update(self._task, completed=step, stats=text)
        else:
            self._progress.update(self._task, completed=step)
