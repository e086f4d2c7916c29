"""Sub-models: a model inside a composite model (or run by a datamodule), named in the recipe.

A composite model's config declares each inner model as a :class:`SubModel` field, e.g.
``AloeSlotsConfig.encoder``; in a recipe::

    model:
      name: aloe-slots
      encoder: {init_from: runs/sfa-clevrer_lite/main, frozen: true}

The engine (:func:`attnlab.train.composite.build_model`) builds every SubModel field
(architecture from the run folder's config.yaml when ``init_from`` is a run folder,
else the preset ``name``; weights from ``init_from``; ``frozen``: no gradients, kept in
eval mode) and passes the modules to the model's constructor as keyword arguments of
the same names. No model reads a run folder itself. A model built without the engine
(``create_model``) gets fresh presets for SubModels without ``init_from``.

A plain string is accepted where a SubModel is expected (``--model.encoder RUN``): an
existing path or one that is not a registered model name is ``init_from``, otherwise
it is the preset ``name``.

A datamodule that runs a model the engine builds (clevrer-qa's slot encoder) implements
:class:`UsesSubModels`: the engine builds what ``submodels()`` names and ``attach``es it.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from attnlab.catalog import MODELS
from attnlab.errors import ConfigError, unknown


@dataclass(frozen=True)
class SubModel:
    """A model named in the recipe and built by the engine."""

    name: str = ""  # a registered preset: the architecture unless init_from is a run folder
    init_from: str | None = None  # a finished run folder (architecture and weights) or a .safetensors
    frozen: bool = False  # no gradients, and eval mode whatever mode its parent is in


def as_submodel(value: Any, where: str) -> SubModel:
    """``value`` (a SubModel, the mapping a config parser gives, or a string) as a checked SubModel."""
    if isinstance(value, SubModel):
        sub = value
    elif isinstance(value, dict):
        names = {f.name for f in dataclasses.fields(SubModel)}
        for key in value:
            if key not in names:
                raise unknown(f"{where} key", str(key), names)
        sub = SubModel(**value)
    elif isinstance(value, str | Path):
        text = str(value)
        is_preset = text in MODELS.names() and not Path(text).expanduser().exists()
        sub = SubModel(name=text) if is_preset else SubModel(init_from=text)
    else:
        raise ConfigError(f"{where} must be a model name, a run folder or {{name, init_from, frozen}}")
    if not sub.name and not sub.init_from:
        raise ConfigError(f"{where} names no model: set {where}.name (a preset) or {where}.init_from (a run)")
    if sub.name and sub.name not in MODELS.names():
        raise unknown("model", sub.name, MODELS.names())
    return sub


def freeze(module: nn.Module) -> nn.Module:
    """No gradients, and eval mode for every forward, whatever ``train()`` its parent calls."""
    module.requires_grad_(False)
    if _into_eval not in module._forward_pre_hooks.values():
        module.register_forward_pre_hook(_into_eval)
    return module.eval()


def _into_eval(module: nn.Module, args: object) -> None:
    # a parent's train() reaches its frozen sub-models too; switch them back before they run
    if module.training:
        module.eval()


def preset(sub: SubModel, where: str) -> nn.Module:
    """A fresh model of the preset ``sub.name``, frozen if ``sub.frozen``."""
    if not sub.name:
        raise ConfigError(f"{where}.name: name the preset to build (or give {where}.init_from a run folder)")
    entry = MODELS.get(sub.name)
    model = entry.cls(entry.config)
    return freeze(model) if sub.frozen else model


def built_or_preset(module: nn.Module | None, sub: SubModel, where: str) -> nn.Module:
    """The module the engine built for ``sub``, or (built without the engine) a fresh preset; a
    SubModel with weights to load needs the engine."""
    if module is not None:
        return module
    if sub.init_from is not None:
        raise ConfigError(
            f"{where}.init_from is loaded by the engine: build the model with "
            "attnlab.train.composite.build_model (or pass the module)"
        )
    return preset(sub, where)


class UsesSubModels(abc.ABC):
    """Mixed into a datamodule that runs models the engine builds from its arguments."""

    @abc.abstractmethod
    def submodels(self) -> dict[str, SubModel]:
        """The argument name -> the model to build (empty when none is needed)."""

    @abc.abstractmethod
    def attach(self, name: str, module: nn.Module) -> None:
        """Take the module the engine built for ``submodels()[name]``."""
