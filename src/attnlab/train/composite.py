"""The engine builds composite models: every :class:`~attnlab.models._submodel.SubModel` a
model's config (or a datamodule) names is built here and handed over as a module.

A SubModel with ``init_from`` a finished run folder is that run's model: the
architecture from its config.yaml (composites of composites are built the same way),
the weights from its model.safetensors. With ``init_from`` a .safetensors file, the
preset ``name`` gives the architecture. Without ``init_from``, a fresh preset.
``frozen`` turns gradients off and puts it in eval mode (the model keeps it there).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from torch import nn

from attnlab.catalog import MODELS
from attnlab.errors import ConfigError, InputError
from attnlab.models._submodel import SubModel, UsesSubModels, freeze, preset
from attnlab.recipes import list_recipes
from attnlab.runs.spec import resolve
from attnlab.runs.weights import CONFIG_FILE, check_run_folder, load_initial_weights


def build_model(name: str, config: Any) -> nn.Module:
    """The registered model ``name`` with ``config``; each SubModel field is built and passed to
    the constructor as the keyword argument of the same name."""
    built = {
        field.name: build_submodel(value, f"model.{field.name}")
        for field in dataclasses.fields(config)
        if isinstance(value := getattr(config, field.name), SubModel)
    }
    return MODELS.get(name).cls(config, **built)


def build_submodel(sub: SubModel, where: str) -> nn.Module:
    """The module ``sub`` names (see the module docstring); errors are one line naming ``where``."""
    if sub.init_from is None:
        return preset(sub, where)
    path = Path(sub.init_from).expanduser()
    if path.is_dir():
        run = check_run_folder(path, f"{where}.init_from")
        spec = resolve(run / CONFIG_FILE, [])
        model = build_model(spec.model_name, spec.model_config)
        load_initial_weights(model, run, f"{where}.init_from")
    elif path.is_file():
        if not sub.name:
            raise ConfigError(f"{where}.name: a weights file ({path}) needs the preset that fits it")
        model = preset(SubModel(name=sub.name), where)
        load_initial_weights(model, path, f"{where}.init_from")
    elif sub.init_from in list_recipes():
        raise ConfigError(
            f"{where} '{sub.init_from}' names the recipe, not a trained run: train it first with "
            f"`attnlab run {sub.init_from} --run-dir runs/{sub.init_from}/main`, "
            f"then pass runs/{sub.init_from}/main"
        )
    else:
        recipe = next((part for part in path.parts if part in list_recipes()), None)  # runs/<recipe>/...
        how = f"; make it with `attnlab run {recipe} --run-dir {path}`" if recipe else ""
        raise InputError(f"{where}.init_from: no run folder at {path}{how}")
    return freeze(model) if sub.frozen else model


def attach_submodels(data: object) -> None:
    """Build the models a datamodule runs (:class:`UsesSubModels`) and attach them to it."""
    if isinstance(data, UsesSubModels):
        for name, sub in data.submodels().items():
            data.attach(name, build_submodel(sub, f"data.{name}"))
