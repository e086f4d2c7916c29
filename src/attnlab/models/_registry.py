"""The model registry: ``register_model`` / ``create_model`` / ``list_models``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from attnlab.catalog import MODELS
from attnlab.registry import Entry, replace_config

__all__ = ["MODELS", "create_model", "list_models", "model_entry", "register_model"]


def register_model(name: str, *, config: Any) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Register ``cls`` under ``name`` (listed in :mod:`attnlab.catalog`) with the preset ``config``."""
    return MODELS.register(name, config=config)


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered model; ``overrides`` replace fields of its preset config (checked)."""
    entry = MODELS.get(name)
    return entry.cls(replace_config(entry.config, overrides, where=f"model '{name}' config"))


def list_models() -> list[str]:
    return MODELS.names()


def model_entry(name: str) -> Entry[nn.Module]:
    return MODELS.get(name)
