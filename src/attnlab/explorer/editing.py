"""Editing an ABN run's attention maps in the page (Mitsuhara et al., arXiv:1905.04929).

The maps live where ``attnlab abn-maps export`` writes them, in the run's ``edited_maps/``
folder (exported on first use: the first training examples with the model's own maps), and are
saved in that format, so ``attnlab abn-maps finetune RUN --maps RUN/edited_maps`` (or the page's
fine-tuning job) trains on them. While a person paints, the edited map is injected in place of
the branch's M (``attention_override``, average-pooled to M's size as the fine-tuning loss pools
it) and the prediction is shown as it changes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from attnlab.data.edited_maps import map_file_name, read_examples, read_map_png
from attnlab.errors import InputError
from attnlab.explorer.cache import RunCache
from attnlab.explorer.pictures import png_url, rounded
from attnlab.explorer.viewers import LoadedRun, NotViewable, load_run
from attnlab.files import atomic_write
from attnlab.models.outputs import ABNOutput
from attnlab.train.attention_branch import AttentionBranchTask
from attnlab.train.human_maps import export

MAPS_FOLDER = "edited_maps"  # in the run folder
EXAMPLES = 32  # training examples exported for editing


@dataclass
class Editing:
    loaded: LoadedRun
    maps: Path  # the maps folder
    inputs: torch.Tensor  # (N, C, H, W) as the model saw them
    labels: torch.Tensor  # (N,)


def open_editing(folder: Path) -> Editing:
    """The run's model and its maps folder, exported first if it does not exist yet."""
    loaded = load_run(folder)
    if not isinstance(loaded.task, AttentionBranchTask):
        raise NotViewable("attention maps can be edited for attention branch (ABN) runs only")
    maps = folder / MAPS_FOLDER
    if not (maps / "examples.safetensors").is_file():
        export(folder, maps, count=EXAMPLES, prefill="model")
    examples = read_examples(maps)
    return Editing(loaded, maps, examples["inputs"], examples["labels"])


def _check_index(editing: Editing, index: int) -> None:
    if not 0 <= index < len(editing.inputs):
        raise NotViewable(f"example {index} is not among the {len(editing.inputs)} exported examples")


def _prediction(editing: Editing, index: int, attention: torch.Tensor | None) -> list[dict[str, Any]]:
    """Top-3 classes of example ``index``, with ``attention`` (1, 1, H, W) in place of M if given."""
    model, x = editing.loaded.task.model, editing.inputs[index][None]
    with torch.no_grad():
        out = model(x)
        if attention is not None:
            assert isinstance(out, ABNOutput)  # an attention-branch task's model
            h, w = out.attention.shape[-2:]
            override = F.adaptive_avg_pool2d(attention, (h, w))  # (1, 1, h, w), as the fine-tuning loss pools
            out = model(x, attention_override=override)
    return editing.loaded.top_classes(out.logits)


def example(editing: Editing, index: int) -> dict[str, Any]:
    """Example ``index``: its picture, its saved map (H * W values in [0, 1]) and both predictions."""
    _check_index(editing, index)
    image = editing.inputs[index]
    size = (int(image.shape[-2]), int(image.shape[-1]))
    saved = read_map_png(editing.maps / "maps" / map_file_name(index), size)  # (1, H, W)
    return {
        "index": index,
        "count": len(editing.inputs),
        "image": png_url(image),
        "shape": list(size),
        "map": rounded(saved),
        "target": editing.loaded.name(editing.labels[index]),
        "model": _prediction(editing, index, None),
        "edited": _prediction(editing, index, saved[None]),
        "maps_folder": str(editing.maps),
    }


def as_map(editing: Editing, index: int, values: list[float]) -> torch.Tensor:
    """Painted values (H * W, row by row, in [0, 1]) as a (1, 1, H, W) map; one line if they do not fit."""
    _check_index(editing, index)
    H, W = editing.inputs.shape[-2:]
    if len(values) != H * W:
        raise InputError(f"a map of this run has {H} x {W} = {H * W} values, got {len(values)}")
    edited = torch.tensor(values, dtype=torch.float32)
    if not torch.isfinite(edited).all() or edited.min() < 0 or edited.max() > 1:
        raise InputError("map values must be numbers in [0, 1] (0 = ignore, 1 = attend)")
    return edited.view(1, 1, H, W)


def predict(editing: Editing, index: int, values: list[float]) -> list[dict[str, Any]]:
    return _prediction(editing, index, as_map(editing, index, values))


def save(editing: Editing, index: int, values: list[float]) -> Path:
    """Write the map as the grey PNG ``abn-maps finetune`` reads (white = attend), atomically."""
    edited = as_map(editing, index, values)[0, 0]
    grey = (edited * 255).round().to(torch.uint8).numpy()
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(grey), mode="L").save(buffer, format="PNG")
    path = editing.maps / "maps" / map_file_name(index)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
    return path


class EditCache(RunCache[Editing]):
    """Editing sessions of the runs edited last."""

    def __init__(self) -> None:
        super().__init__(open_editing)
