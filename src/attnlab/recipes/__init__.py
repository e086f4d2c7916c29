"""Recipes shipped with attnlab: ``attnlab run NAME`` takes ``recipes/NAME.yaml``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from attnlab.errors import ConfigError, unknown


def _folder() -> Path:
    return Path(str(resources.files("attnlab.recipes")))


def list_recipes() -> dict[str, str]:
    """Recipe name -> its one-line description."""
    out = {}
    for path in sorted(_folder().glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        out[path.stem] = str(data.get("description", "")).strip().splitlines()[0] if data else ""
    return out


def recipe_path(name_or_path: str) -> Path:
    """A shipped recipe by name, or a YAML file given by path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        if not candidate.is_file():
            raise ConfigError(f"recipe file not found: {candidate}")
        return candidate
    path = _folder() / f"{name_or_path}.yaml"
    if not path.is_file():
        raise unknown("recipe", name_or_path, list_recipes())
    return path
