"""Where the official goldens live (``shared/reference/<family>``, see each README), for the tests of
every family that matches one; ``ATTNLAB_REFERENCE`` points elsewhere."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

FILES = {
    "dino": (
        "dino_vit_tiny_golden.pt",
        "dino_keys.txt",
        "dino_head_golden.pt",
        "dino_loss_golden.pt",
        "dino_summary.json",
    ),
    "vjepa": ("vjepa_small_state_dict.pt", "vjepa_small_golden.pt", "vjepa_small_train_step.pt"),
    "sam": (
        "sam_small_state_dict.pt",
        "sam_small_golden.pt",
        "sam_small_config.json",
        "sam_vit_b_state_dict_keys.txt",
    ),
    "mae": (
        "mae_tiny_state_dict.pt",
        "mae_tiny_golden.pt",
        "mae_tiny_keys.txt",
        "mae_vit_base_patch16_dec512d8b_keys.txt",
    ),
}


def reference(family: str) -> Path:
    """The folder holding ``family``'s files, or a skip."""
    candidates = [Path(__file__).resolve().parents[2] / "shared" / "reference" / family]
    if os.environ.get("ATTNLAB_REFERENCE"):
        root = Path(os.environ["ATTNLAB_REFERENCE"])
        candidates += [root / family, root]
    for folder in candidates:
        if all((folder / name).is_file() for name in FILES[family]):
            return folder
    pytest.skip(f"the {family} reference folder (shared/reference/{family}) is not there")


def load(family: str, name: str) -> Any:
    return torch.load(reference(family) / name, map_location="cpu", weights_only=True)


def key_shapes(family: str, name: str, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """``key (d0, d1, ...)`` lines of a key list, those under ``prefix`` with it removed."""
    out = {}
    for line in (reference(family) / name).read_text().splitlines():
        key, _, shape = line.partition(" ")
        if key.startswith(prefix) and shape:
            out[key.removeprefix(prefix)] = tuple(int(n) for n in shape.strip("()").split(",") if n.strip())
    return out


def meta_state(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """Tensors of those shapes that hold no memory (meta device)."""
    return {k: torch.empty(s, device="meta") for k, s in shapes.items()}
