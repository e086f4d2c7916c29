"""The datamodule registry (``data.name`` in a recipe)."""

from __future__ import annotations

from collections.abc import Callable

from attnlab.data.datamodule import DataModule
from attnlab.registry import Registry

DATAMODULES: Registry[DataModule] = Registry("dataset")


def register_datamodule(
    name: str, *, description: str = ""
) -> Callable[[type[DataModule]], type[DataModule]]:
    return DATAMODULES.register(name, description=description)
