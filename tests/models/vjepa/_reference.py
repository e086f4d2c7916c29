"""The official V-JEPA goldens (``shared/reference/vjepa``): :mod:`tests._goldens` for one family."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests import _goldens


def reference() -> Path:
    return _goldens.reference("vjepa")


def load(name: str) -> Any:
    return _goldens.load("vjepa", name)
