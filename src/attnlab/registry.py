"""One lazy registry type for models, datamodules, tasks and runners.

The table of what exists (:mod:`attnlab.catalog`) names each entry's ``"module:Class"``,
description and pip extra, so listing imports nothing. ``get(name)`` imports that module;
its ``@register`` decorator binds the class and (for models) a preset config. Models take
one typed config dataclass (``Model(config)``, nanoGPT style), so a preset is a config
instance; variants are presets, not flags.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from attnlab.errors import ConfigError, unknown

T = TypeVar("T")


@dataclass(frozen=True)
class Lazy:
    """Where an entry lives, before it is imported."""

    target: str  # "package.module:Class"
    description: str
    extra: str | None = None  # the pip extra its module needs, if any

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    cls: type[T]
    config: Any  # a dataclass instance (the preset), or None for classes configured by __init__
    description: str


class Registry(Generic[T]):
    def __init__(self, kind: str, index: dict[str, Lazy]) -> None:
        self.kind = kind
        self.index = index
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, *, config: Any = None) -> Callable[[type[T]], type[T]]:
        """Class decorator; stack it to register several presets of one class."""

        def add(cls: type[T]) -> type[T]:
            lazy = self.index.get(name)
            if lazy is None:
                raise ConfigError(f"{self.kind} '{name}' is not in attnlab.catalog; add it there")
            if lazy.target != f"{cls.__module__}:{cls.__qualname__}":
                raise ConfigError(f"{self.kind} '{name}': attnlab.catalog says {lazy.target}")
            if name in self._entries:
                raise ConfigError(f"{self.kind} '{name}' is registered twice")
            if config is not None and not dataclasses.is_dataclass(config):
                raise ConfigError(f"{self.kind} '{name}': config must be a dataclass instance")
            self._entries[name] = Entry(name, cls, config, lazy.description)
            return cls

        return add

    def get(self, name: str) -> Entry[T]:
        if name not in self.index:
            raise unknown(self.kind, name, self.index)
        if name not in self._entries:
            self._load(name, self.index[name])
        return self._entries[name]

    def _load(self, name: str, lazy: Lazy) -> None:
        try:
            importlib.import_module(lazy.module)
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] == "attnlab" or lazy.extra is None:
                raise
            raise ConfigError(
                f"{self.kind} '{name}' needs the '{lazy.extra}' extra (no module '{exc.name}'): "
                f"pip install 'attnlab[{lazy.extra}]'"
            ) from None
        if name not in self._entries:
            raise ConfigError(f"{self.kind} '{name}': {lazy.module} registers no such name")

    def names(self) -> list[str]:
        return sorted(self.index)

    def descriptions(self) -> dict[str, str]:
        """Name -> one-line description, without importing anything."""
        return {name: self.index[name].description for name in self.names()}

    def entries(self) -> list[Entry[T]]:
        """Every entry, loaded (imports every module: for tests and tools, not for listing)."""
        return [self.get(n) for n in self.names()]


def replace_config(config: Any, overrides: dict[str, Any], *, where: str) -> Any:
    """``dataclasses.replace`` that names unknown fields with a suggestion."""
    fields = {f.name for f in dataclasses.fields(config)}
    for key in overrides:
        if key not in fields:
            raise unknown(f"{where} field", key, fields)
    return dataclasses.replace(config, **overrides)
