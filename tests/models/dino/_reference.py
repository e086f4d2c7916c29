"""Where the official DINO goldens live (``shared/reference/dino``, see its README)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

FILES = ("dino_head_golden.pt", "dino_loss_golden.pt", "dino_summary.json", "dino_keys.txt")


def reference_dir() -> Path | None:
    candidates = [Path(__file__).resolve().parents[4] / "shared" / "reference" / "dino"]
    if os.environ.get("ATTNLAB_REFERENCE"):
        root = Path(os.environ["ATTNLAB_REFERENCE"])
        candidates += [root / "dino", root]
    for folder in candidates:
        if all((folder / name).is_file() for name in FILES):
            return folder
    return None


def reference() -> Path:
    folder = reference_dir()
    if folder is None:
        pytest.skip("the DINO reference folder (shared/reference/dino) is not there")
    return folder


def load(name: str) -> Any:
    return torch.load(reference() / name, map_location="cpu", weights_only=True)
