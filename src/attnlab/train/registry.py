"""The task registry (``task.name`` in a recipe)."""

from __future__ import annotations

from collections.abc import Callable

from attnlab.registry import Registry
from attnlab.train.task import Task

TASKS: Registry[Task] = Registry("task")


def register_task(name: str, *, description: str = "") -> Callable[[type[Task]], type[Task]]:
    return TASKS.register(name, description=description)
