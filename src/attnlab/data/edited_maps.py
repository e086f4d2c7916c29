"""Human-edited attention maps for ABN fine-tuning (Mitsuhara et al., arXiv:1905.04929).

A maps folder, as ``attnlab abn-maps export`` writes it:

* ``examples.safetensors``: ``inputs`` (N, C, H, W) float32 exactly as the model saw
  them, ``labels`` (N,) int64 and ``indices`` (N,) int64, their places in the
  dataset's training split;
* ``maps/train_<index>.png``: one grey map per example at the image's size, white =
  attend, black = ignore; the files a person edits (deleting one leaves its example
  out);
* ``images/train_<index>.png``: the input, for looking at while editing.

:class:`EditedMaps` pairs the inputs with the edited maps; the ``edited-maps``
datamodule trains on them and validates and tests on the original dataset.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch.utils.data import Dataset

from attnlab.data._registry import DATAMODULES, register_datamodule
from attnlab.data.datamodule import DataModule, Split
from attnlab.errors import ConfigError, InputError

EXAMPLES_FILE = "examples.safetensors"
MAP_NAME = re.compile(r"train_(\d+)\.png")


def map_file_name(index: int) -> str:
    return f"train_{index:06d}.png"


def read_map_png(path: Path, size: tuple[int, int]) -> torch.Tensor:
    """A grey (or colour, averaged) PNG of exactly ``size`` (H, W) -> (1, H, W) float32 in [0, 1]."""
    try:
        with Image.open(path) as image:
            grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0  # (H, W)
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"cannot read map {path}: {exc}") from None
    if grey.shape != size:
        raise InputError(
            f"map {path.name} is {grey.shape[1]}x{grey.shape[0]} pixels but its image is "
            f"{size[1]}x{size[0]}; edit the exported map without resizing it"
        )
    return torch.from_numpy(grey)[None]


def read_examples(folder: Path) -> dict[str, torch.Tensor]:
    path = folder / EXAMPLES_FILE
    if not path.is_file():
        raise InputError(f"{folder} is not an exported maps folder: {EXAMPLES_FILE} is missing")
    try:
        examples = load_file(path)
    except (SafetensorError, OSError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    if set(examples) != {"inputs", "labels", "indices"} or examples["inputs"].dim() != 4:
        raise InputError(f"{path} must hold inputs (N, C, H, W), labels (N,) and indices (N,)")
    return examples


class EditedMaps(Dataset[dict[str, torch.Tensor]]):
    """The exported examples that still have a map file: ``input``, ``label`` and ``attention`` (1, H, W)."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        examples = read_examples(folder)
        position = {int(i): n for n, i in enumerate(examples["indices"].tolist())}
        files = sorted((folder / "maps").glob("*.png"))
        unknown = [f.name for f in files if not _known(f.name, position)]
        if unknown:
            raise InputError(
                f"{folder / 'maps'}: {unknown[0]} (and {len(unknown) - 1} more) match no exported example; "
                f"map files are named like {map_file_name(int(examples['indices'][0]))}"
            )
        if not files:
            raise InputError(f"{folder / 'maps'} has no map PNGs to fine-tune on")
        rows = [position[int(MAP_NAME.fullmatch(f.name).group(1))] for f in files]  # type: ignore[union-attr]
        size = tuple(examples["inputs"].shape[-2:])
        self.inputs = examples["inputs"][rows]  # (N', C, H, W)
        self.labels = examples["labels"][rows]  # (N',)
        self.maps = torch.stack([read_map_png(f, size) for f in files])  # (N', 1, H, W)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input": self.inputs[index], "label": self.labels[index], "attention": self.maps[index]}


def _known(name: str, position: dict[int, int]) -> bool:
    match = MAP_NAME.fullmatch(name)
    return match is not None and int(match.group(1)) in position


@register_datamodule("edited-maps")
class EditedMapsData(DataModule):
    """Training split: :class:`EditedMaps` from ``maps``; val and test: the ``base`` datamodule's."""

    def __init__(
        self,
        *,
        seed: int,
        maps: str,
        base: str,
        base_args: dict[str, Any] | None = None,
        batch_size: int = 32,
        eval_batch_size: int = 256,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
        if base == "edited-maps":
            raise ConfigError("data.base must be the dataset the maps were exported from, not edited-maps")
        self.maps = Path(maps)
        try:
            self.base = DATAMODULES.get(base).cls(seed=seed, **(base_args or {}))
        except TypeError as exc:  # a key the base datamodule does not take
            raise ConfigError(f"data.base_args do not fit '{base}': {exc}") from None
        self.num_classes = getattr(self.base, "num_classes", None)
        self.class_names = getattr(self.base, "class_names", None)

    def build(self, split: Split) -> Dataset[Any]:
        return EditedMaps(self.maps) if split == "train" else self.base.dataset(split)
