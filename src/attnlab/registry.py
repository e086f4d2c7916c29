"""One registry type for models, datamodules and tasks.

An entry is a name bound to a class and (optionally) a preset config. Models take
one typed config dataclass (``Model(config)``, nanoGPT style), so a preset is a
config instance; variants are presets, not flags.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from attnlab.errors import ConfigError, unknown

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    cls: type[T]
    config: Any  # a dataclass instance (the preset), or None for classes configured by __init__
    description: str


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self, name: str, *, config: Any = None, description: str = ""
    ) -> Callable[[type[T]], type[T]]:
        """Class decorator; stack it to register several presets of one class."""

        def add(cls: type[T]) -> type[T]:
            if name in self._entries:
                raise ConfigError(f"{self.kind} '{name}' is registered twice")
            if config is not None and not dataclasses.is_dataclass(config):
                raise ConfigError(f"{self.kind} '{name}': config must be a dataclass instance")
            summary = description or next(iter((cls.__doc__ or "").strip().splitlines()), "")
            self._entries[name] = Entry(name, cls, config, summary)
            return cls

        return add

    def get(self, name: str) -> Entry[T]:
        if name not in self._entries:
            raise unknown(self.kind, name, self._entries)
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]


def replace_config(config: Any, overrides: dict[str, Any], *, where: str) -> Any:
    """``dataclasses.replace`` that names unknown fields with a suggestion."""
    fields = {f.name for f in dataclasses.fields(config)}
    for key in overrides:
        if key not in fields:
            raise unknown(f"{where} field", key, fields)
    return dataclasses.replace(config, **overrides)
