"""Recipes shipped with attnlab: ``attnlab run NAME`` takes ``recipes/NAME.yaml``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from attnlab.errors import ConfigError, unknown


def _folder() -> Path:
    return Path(str(resources.files("attnlab.recipes")))


def list_recipes() -> dict[str, str]:
    """Recipe name -> the first sentence of its description (``attnlab run NAME --help`` has it all)."""
    out = {}
    for path in sorted(_folder().glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        description = " ".join(str(data.get("description", "")).split()) if data else ""
        out[path.stem] = description.split(". ")[0].removesuffix(".")
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
