"""The datamodule registry (``data.name`` in a recipe; listed in :mod:`attnlab.catalog`)."""

from __future__ import annotations

from collections.abc import Callable

from attnlab.catalog import DATAMODULES
from attnlab.data.datamodule import DataModule

__all__ = ["DATAMODULES", "register_datamodule"]


def register_datamodule(name: str) -> Callable[[type[DataModule]], type[DataModule]]:
    return DATAMODULES.register(name)
