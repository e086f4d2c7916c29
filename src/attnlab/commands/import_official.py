"""``attnlab import NAME CHECKPOINT``: an official checkpoint as a finished run folder.

The authors' weights are reference material, not part of the package: the user passes the
file. Each importable checkpoint names the recipe whose data it is tested on, the overrides
that make the recipe's model the checkpoint's architecture, and the loader that renames and
checks its keys (:mod:`attnlab.runs.official`). The engine then writes an ordinary run folder
(config.yaml, model.safetensors, metrics.json, report.md with the decomposition pictures),
so ``attnlab evaluate RUN`` tests it again, on other data overrides too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from attnlab.errors import unknown
from attnlab.runs.official import load_official_sam_into, load_official_vimon_into, official_sam_preset
from attnlab.train.engine import Outcome, import_weights


@dataclass(frozen=True)
class Importable:
    recipe: str  # the data (and task) it is tested on
    overrides: tuple[str, ...]  # what makes the recipe's model the checkpoint's architecture
    description: str
    load: Callable[[nn.Module, Path], object]  # fill the built model from the checkpoint file
    model_for: Callable[[Path], str] | None = None  # the model.name the checkpoint's shapes say


IMPORTABLE = {
    "vimon-official": Importable(
        recipe="vimon-vmds",
        # the authors trained with 6 slots on VMDS (shared/reference/vimon/README.md)
        overrides=("--model.name", "vimon-vmds-official", "--model.num_slots", "6"),
        description="the authors' ViMON trained on VMDS (ckpt_vimon_vmds.pt, "
        "ecker-lab/object-centric-representation-benchmark)",
        load=load_official_vimon_into,
    ),
    "sam-official": Importable(
        recipe="sam-cells",
        overrides=(),
        description="an official Segment Anything checkpoint (sam_vit_b_01ec64.pth, ViT-L or ViT-H; "
        "facebookresearch/segment-anything), tested on the generated cells without tuning",
        load=load_official_sam_into,
        model_for=official_sam_preset,
    ),
}


def import_official(
    name: str, checkpoint: Path, overrides: list[str], *, run_dir: Path | None, command: str
) -> Outcome:
    """Write, test and report a run folder holding the official checkpoint ``name``."""
    if name not in IMPORTABLE:
        raise unknown("importable checkpoint", name, IMPORTABLE)
    item = IMPORTABLE[name]
    architecture = ("--model.name", item.model_for(checkpoint)) if item.model_for else ()
    description = ("--description", f"Imported: {item.description}. Nothing trained.")
    return import_weights(
        item.recipe,
        [*description, *item.overrides, *architecture, *overrides],
        lambda model: item.load(model, checkpoint),
        run_dir=run_dir,
        command=command,
        name=name,
    )
