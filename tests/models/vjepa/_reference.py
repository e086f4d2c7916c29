"""Where the official V-JEPA goldens live (``shared/reference/vjepa``, see its README)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

FILES = ("vjepa_small_state_dict.pt", "vjepa_small_golden.pt", "vjepa_small_train_step.pt")


def reference_dir() -> Path | None:
    candidates = [Path(__file__).resolve().parents[4] / "shared" / "reference" / "vjepa"]
    if os.environ.get("ATTNLAB_REFERENCE"):
        root = Path(os.environ["ATTNLAB_REFERENCE"])
        candidates += [root / "vjepa", root]
    for folder in candidates:
        if all((folder / name).is_file() for name in FILES):
            return folder
    return None


def reference() -> Path:
    folder = reference_dir()
    if folder is None:
        pytest.skip("the V-JEPA reference folder (shared/reference/vjepa) is not there")
    return folder


def load(name: str) -> Any:
    return torch.load(reference() / name, map_location="cpu", weights_only=True)
