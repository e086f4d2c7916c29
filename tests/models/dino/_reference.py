"""The official DINO goldens (``shared/reference/dino``): :mod:`tests._goldens` for one family."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests import _goldens


def reference() -> Path:
    return _goldens.reference("dino")


def load(name: str) -> Any:
    return _goldens.load("dino", name)
