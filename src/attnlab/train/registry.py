"""The task registry (``task.name`` in a recipe; listed in :mod:`attnlab.catalog`)."""

from __future__ import annotations

from collections.abc import Callable

from attnlab.catalog import TASKS
from attnlab.train.task import Task

__all__ = ["TASKS", "register_task"]


def register_task(name: str) -> Callable[[type[Task]], type[Task]]:
    return TASKS.register(name)
