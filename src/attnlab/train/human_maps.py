"""``attnlab abn-maps``: export ABN attention maps for editing, then fine-tune on the edits.

Mitsuhara et al. (arXiv:1905.04929, "Embedding human knowledge into deep neural
network via attention map") let people correct ABN's maps by hand and fine-tune
with ``L_att + L_per + lambda * ||M - M'||_2``. ``export`` writes the maps of a
trained run as PNGs at the image's size (white = attend; the format of
:mod:`attnlab.data.edited_maps`); ``finetune`` starts a new run from the trained
weights on the edited examples, validated and tested on the original dataset, with
all of ``attnlab run``'s checkpointing and reporting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from PIL import Image
from safetensors.torch import save_file

from attnlab.data.edited_maps import EXAMPLES_FILE, EditedMaps, map_file_name
from attnlab.errors import ConfigError, InputError, RunDirError
from attnlab.explain.regions import foreground
from attnlab.runs import rundir
from attnlab.runs.spec import resolve
from attnlab.runs.weights import load_initial_weights
from attnlab.train import engine

Prefill = Literal["model", "foreground"]
# data keys of the original run that the fine-tuning run sets itself
_OWN_DATA_KEYS = ("name", "batch_size", "eval_batch_size", "num_workers")


@dataclass
class FinetuneOptions:
    map_weight: float = 1.0  # lambda in front of ||M - M'||_2
    steps: int = 300
    lr_factor: float = 0.1  # the fine-tuning learning rate is the original one times this


def export(run_dir: Path, out: Path, *, count: int, prefill: Prefill = "model") -> int:
    """Write ``count`` training examples of a finished ABN run and their maps to ``out``; returns N."""
    if count < 1:
        raise ConfigError(f"--count must be >= 1, got {count}")
    if out.exists() and any(out.iterdir()):
        raise RunDirError(f"{out} exists and is not empty; choose a new folder (nothing is overwritten)")
    run = rundir.existing(run_dir)
    spec = resolve(run.config, [])
    task, data = engine.build(spec)
    load_initial_weights(task.model, run.path)
    train = data.dataset("train")
    count = min(count, len(train))  # type: ignore[arg-type]
    items = [train[i] for i in range(count)]
    inputs = torch.stack([item["input"] for item in items])  # (N, C, H, W)
    if inputs.dim() != 4:
        raise InputError(
            f"abn-maps edits image maps; this run's inputs are {tuple(inputs.shape[1:])}, not (C, H, W)"
        )
    labels = torch.stack([item["label"] for item in items])  # (N,)
    maps = _model_maps(task.model, inputs) if prefill == "model" else foreground(inputs)
    for sub in ("maps", "images"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        _write_png(out / "maps" / map_file_name(i), maps[i])
        _write_png(out / "images" / map_file_name(i), _unit_range(inputs[i]))
    indices = torch.arange(count)
    save_file({"inputs": inputs.contiguous(), "labels": labels, "indices": indices}, str(out / EXAMPLES_FILE))
    source = {"run": str(run.path.resolve()), "prefill": prefill, "examples": count}
    (out / "source.json").write_text(json.dumps(source, indent=2))
    return count


@torch.no_grad()
def _model_maps(model: torch.nn.Module, inputs: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The branch's M, bilinearly upsampled to the input size: (N, 1, H, W) in [0, 1]."""
    model.eval()
    maps = []
    for chunk in inputs.split(batch_size):
        attention = getattr(model(chunk), "attention", None)
        if not isinstance(attention, torch.Tensor) or attention.dim() != 4:
            raise InputError(
                f"abn-maps needs a 2D attention branch model (output.attention (B, 1, h, w)); "
                f"{type(model).__name__} has none"
            )
        maps.append(F.interpolate(attention, size=inputs.shape[-2:], mode="bilinear", align_corners=False))
    return torch.cat(maps).clamp(0, 1)


def _unit_range(image: torch.Tensor) -> torch.Tensor:
    low, high = image.min(), image.max()
    return (image - low) / (high - low).clamp_min(1e-8)


def _write_png(path: Path, image: torch.Tensor) -> None:
    """(1 | 3, H, W) in [0, 1] -> an 8-bit grey or RGB PNG."""
    pixels = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()  # (H, W, C)
    Image.fromarray(np.ascontiguousarray(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels)).save(path)


def finetune_recipe(run_dir: Path, maps: Path, options: FinetuneOptions) -> dict[str, Any]:
    """The fine-tuning run's recipe, derived from a finished ABN run's configuration."""
    run = rundir.existing(run_dir)
    if not run.weights.is_file():
        raise RunDirError(f"{run.path} has no final weights; fine-tune a finished run")
    if options.steps < 1 or options.lr_factor <= 0 or options.map_weight < 0:
        raise ConfigError("--steps must be >= 1, --lr-factor > 0 and --map-weight >= 0")
    original = yaml.safe_load(run.config.read_text())
    task = (original.get("task") or {}).get("name")
    if task != "attention-branch":
        raise InputError(
            f"{run.path} trained {f'task {task!r}' if task else 'no task'}, not an attention branch"
        )
    if "lr" not in original["optim"]:  # several named optimisers: no one learning rate to scale
        raise InputError(f"{run.path} trained with several optimisers; fine-tuning takes a run with one")
    num_maps = len(EditedMaps(maps))  # reads every map: bad files fail here, before a run folder exists
    data = original["data"]
    base_args = {k: v for k, v in data.items() if k not in _OWN_DATA_KEYS}
    optim = {**original["optim"], "lr": original["optim"]["lr"] * options.lr_factor, "warmup_steps": 0}
    trainer = {
        **original["trainer"],
        "max_steps": options.steps,
        "val_every": options.steps,
        "checkpoint_every": min(original["trainer"]["checkpoint_every"], options.steps),
        "init_from": str(run.path.resolve()),
    }
    return {
        "description": f"ABN of {run.path} fine-tuned on {num_maps} edited maps from {maps}",
        "seed": original["seed"],
        "task": {**original["task"], "map_weight": options.map_weight},
        "model": original["model"],
        "data": {
            "name": "edited-maps",
            "maps": str(maps.resolve()),
            "base": data["name"],
            "base_args": base_args,
            "batch_size": min(data["batch_size"], num_maps),
            "eval_batch_size": data["eval_batch_size"],
        },
        "optim": optim,
        "trainer": trainer,
    }


def finetune(
    run_dir: Path,
    maps: Path,
    options: FinetuneOptions,
    *,
    overrides: list[str],
    out: Path | None,
    command: str,
) -> engine.Outcome:
    """Fine-tune a finished ABN run on the edited maps in ``maps``, as a new run (``out``)."""
    recipe = finetune_recipe(run_dir, maps, options)
    path = maps / "finetune.yaml"  # kept beside the maps: the run folder's config.yaml is the resolved copy
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return engine.run(str(path), overrides, run_dir=out, command=command, name="abn-maps-finetune")
