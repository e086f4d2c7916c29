"""Checkpoints that are never half-written and never unpickle code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from attnlab.errors import RunDirError
from attnlab.files import atomic_write


def atomic_torch_save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def safe_torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with one-line errors for missing or corrupt files."""
    if not path.is_file():
        raise RunDirError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated/corrupt files
        raise RunDirError(f"checkpoint {path} is corrupt or not a weights-only checkpoint: {exc}") from None


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO: atomic rename on save, ``weights_only=True`` on load."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        atomic_torch_save(checkpoint, Path(path))

    def load_checkpoint(
        self, path: _PATH, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return safe_torch_load(Path(path))
