"""A run's configuration: recipe YAML + command-line overrides -> a typed :class:`RunSpec`.

Sections: ``seed``, ``description``, ``task`` / ``model`` / ``data`` (each a
``name`` plus the typed fields of what that name registered: the model's config
dataclass, the task's and datamodule's constructor signatures) and ``optim`` /
``trainer`` (:mod:`attnlab.runs.config`). ``optim`` is one optimiser, or several by name
(``optim: {NAME: {...}}``: a mapping whose values are mappings). jsonargparse checks every
key and type.

``runner`` (default ``lightning``) names the training loop (:data:`attnlab.catalog.RUNNERS`).
It decides which of ``task`` / ``model`` / ``data`` the recipe has (the runner's
``sections``) and adds the runner's own typed section, named after it (``dqn:``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from jsonargparse import ActionConfigFile, ArgumentParser, Namespace
from jsonargparse import ArgumentError as JsonArgError

from attnlab.catalog import DATAMODULES, MODELS, RUNNERS, TASKS
from attnlab.errors import ConfigError, did_you_mean
from attnlab.runs.config import NamedOptimConfig, Optim, OptimConfig, TrainerConfig

# Constructor arguments the engine supplies itself, never the recipe.
ENGINE_ARGS = {"model", "optim", "seed"}
DEFAULT_RUNNER = "lightning"
ALWAYS = ("seed", "description", "runner", "optim", "trainer")  # sections every runner reads


@dataclass
class RunSpec:
    seed: int
    description: str
    task_name: str | None  # None where the runner reads no task (and task_args is {})
    task_args: dict[str, Any]
    model_name: str
    model_config: Any  # the model's config dataclass instance
    data_name: str | None  # None where the runner reads no data (and data_args is {})
    data_args: dict[str, Any]
    optim: Optim  # one OptimConfig, or several NamedOptimConfig by name
    trainer: TrainerConfig
    yaml_text: str  # the resolved configuration, as saved in the run folder
    runner: str = DEFAULT_RUNNER  # the training loop (attnlab.catalog.RUNNERS)
    runner_config: Any = None  # the runner's own section (``dqn:``), a dataclass instance, or None


def _override(overrides: list[str], key: str) -> str | None:
    """The last value given to ``--key`` on the command line, if any."""
    value = None
    for i, arg in enumerate(overrides):
        if arg == f"--{key}" and i + 1 < len(overrides):
            value = overrides[i + 1]
        elif arg.startswith(f"--{key}="):
            value = arg.split("=", 1)[1]
    return value


def _names(recipe: dict[str, Any], overrides: list[str]) -> dict[str, str]:
    """The runner and its task/model/data names, which decide what the other keys may be."""
    runner = str(_override(overrides, "runner") or recipe.get("runner") or DEFAULT_RUNNER)
    entry = RUNNERS.get(runner)
    sections = entry.cls.sections
    own = (runner,) if entry.config is not None else ()
    for key in recipe:
        other = key in ("task", "model", "data") or key in RUNNERS.index  # another runner's section
        if key not in (*ALWAYS, *sections, *own) and other:
            listing = ", ".join((*sections, *own))
            raise ConfigError(f"runner '{runner}' reads no '{key}' section (remove it; it reads {listing})")
    names = {"runner": runner}
    for section in sections:
        value = (recipe.get(section) or {}).get("name") if isinstance(recipe.get(section), dict) else None
        value = _override(overrides, f"{section}.name") or value
        if not value:
            raise ConfigError(f"the recipe names no {section} (set {section}.name)")
        names[section] = str(value)
    return names


def _optim_names(recipe: dict[str, Any]) -> list[str] | None:
    """The names of several optimisers (``optim: {NAME: {...}}``), or None for a single one."""
    optim = recipe.get("optim")
    if not isinstance(optim, dict) or not any(isinstance(v, dict) for v in optim.values()):
        return None
    flat = [key for key, value in optim.items() if not isinstance(value, dict)]
    if flat:
        raise ConfigError(
            f"optim mixes named optimisers with plain keys ({', '.join(map(str, flat))}); "
            "give each named optimiser its own mapping, e.g. optim: {generator: {lr: 2e-4}}"
        )
    for name in optim:
        if not re.fullmatch(r"[A-Za-z_]\w*", str(name)):
            raise ConfigError(f"optimiser name '{name}' must be an identifier (letters, digits, _)")
    return [str(name) for name in optim]


def _add_optim(p: ArgumentParser, optim_names: list[str] | None) -> None:
    if optim_names is None:
        p.add_class_arguments(OptimConfig, "optim", sub_configs=False)
        return
    for name in optim_names:
        p.add_class_arguments(NamedOptimConfig, f"optim.{name}", sub_configs=False)


def _optim(ns: Namespace, optim_names: list[str] | None, trainer: TrainerConfig) -> Optim:
    """The typed ``optim``; several optimisers also check the trainer settings they cannot take."""
    if optim_names is None:
        single = OptimConfig(**_betas(_section(ns, "optim")))
        single.check("optim")
        return single
    if trainer.accumulate_grad_batches != 1 or trainer.gradient_clip_val is not None:
        raise ConfigError(
            "several optimisers train with manual optimisation, which takes no "
            "trainer.accumulate_grad_batches or trainer.gradient_clip_val; leave them unset"
        )
    task = TASKS.get(ns.task.name).cls if "task" in ns else None
    taking_turns = getattr(task, "optimizer_names", None) is not None
    if trainer.strategy == "ddp" and taking_turns:
        raise ConfigError(
            "several optimisers take turns, leaving the others' parameters without gradient, which "
            "plain DDP refuses; use --trainer.strategy ddp_find_unused_parameters_true"
        )
    named = {name: NamedOptimConfig(**_betas(ns["optim"][name].as_dict())) for name in optim_names}
    for name, config in named.items():
        config.check(f"optim.{name}")
    return named


def _betas(values: dict[str, Any]) -> dict[str, Any]:
    return values | {"betas": tuple(values["betas"])}


def _runner_arguments(p: ArgumentParser, runner: str) -> None:
    """``--runner`` and the runner's own section, with its registered defaults."""
    p.add_argument("--runner", type=str, default=DEFAULT_RUNNER)
    config = RUNNERS.get(runner).config
    if config is not None:
        p.add_class_arguments(type(config), runner, sub_configs=False)
        p.set_defaults({f"{runner}.{f.name}": getattr(config, f.name) for f in dataclasses.fields(config)})


def _parser(names: dict[str, str], optim_names: list[str] | None = None) -> ArgumentParser:
    model = MODELS.get(names["model"])
    # allow_abbrev=False: a prefix (--trainer.max_step) is an unknown key, never a guess at a full one
    p = ArgumentParser(exit_on_error=False, prog="attnlab run", default_env=False, allow_abbrev=False)
    p.add_argument("--config", action=ActionConfigFile)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--description", type=str, default="")
    _runner_arguments(p, names["runner"])
    for section, registry in (("task", TASKS), ("data", DATAMODULES)):
        if section not in names:
            continue
        p.add_argument(f"--{section}.name", type=str, required=True)
        p.add_class_arguments(registry.get(names[section]).cls, section, skip=ENGINE_ARGS, sub_configs=False)
    p.add_argument("--model.name", type=str, required=True)
    p.add_class_arguments(type(model.config), "model", sub_configs=False)
    p.set_defaults(
        {f"model.{f.name}": getattr(model.config, f.name) for f in dataclasses.fields(model.config)}
    )
    _add_optim(p, optim_names)
    p.add_class_arguments(TrainerConfig, "trainer", sub_configs=False)
    return p


def _one_line(exc: BaseException, parser: ArgumentParser) -> ConfigError:
    text = " ".join(str(exc).split())
    match = re.search(r"unrecognized arguments: --?([\w.]+)", text) or re.search(
        r'[Kk]ey "([\w.]+)" is not expected', text
    )
    group = re.search(r"Group '([\w.]+)' does not accept option '(\w+)'", text)  # nested (optim.NAME)
    if match or group:
        key = f"{group.group(1)}.{group.group(2)}" if group else match.group(1)  # type: ignore[union-attr]
        known = [a.dest for a in parser._actions if a.dest and a.dest != "help"]
        return ConfigError(f"unknown config key '{key}'{did_you_mean(key, known)}")
    return ConfigError(f"invalid configuration: {text}")


def _read(config_file: Path) -> dict[str, Any]:
    try:
        recipe = yaml.safe_load(config_file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {config_file}: {' '.join(str(exc).split())}") from None
    if not isinstance(recipe, dict):
        raise ConfigError(f"config {config_file} must be a YAML mapping")
    return recipe


def resolve(config_file: Path, overrides: list[str]) -> RunSpec:
    """Parse a recipe (or a run's saved config.yaml) with overrides into a :class:`RunSpec`."""
    recipe = _read(config_file)
    names = _names(recipe, overrides)
    optim_names = _optim_names(recipe)
    parser = _parser(names, optim_names)
    return _spec(parser, _parse(parser, config_file, overrides), optim_names)


@dataclass(frozen=True)
class KeyInfo:
    """One configuration key of a recipe, for ``attnlab run RECIPE --help``."""

    key: str
    type: str
    value: Any  # in this recipe (with the overrides given)
    default: Any  # without the recipe (the model's, dataset's or trainer's own default)


def recipe_keys(config_file: Path, overrides: list[str]) -> list[KeyInfo]:
    """Every key a recipe accepts, with its type, its value in the recipe and its default."""
    recipe = _read(config_file)
    parser = _parser(_names(recipe, overrides), _optim_names(recipe))
    ns = _parse(parser, config_file, overrides)
    keys = []
    for action in parser._actions:
        hint = getattr(action, "_typehint", None)
        if hint is None or action.dest == "description":  # printed above the table
            continue
        keys.append(KeyInfo(action.dest, _type_name(hint), ns.get(action.dest), action.default))
    return keys


def _type_name(hint: Any) -> str:
    """``int``, ``adamw|adam|sgd``, ``float|None`` ...: how the value is written on the command line."""
    origin = get_origin(hint)
    if origin is Literal:
        return "|".join(str(a) for a in get_args(hint))
    if origin is Union or type(hint).__name__ == "UnionType":
        return "|".join("None" if a is type(None) else _type_name(a) for a in get_args(hint))
    if origin is not None:
        return str(hint).replace("typing.", "")
    return getattr(hint, "__name__", str(hint))


def _parse(parser: ArgumentParser, config_file: Path, overrides: list[str]) -> Namespace:
    try:
        return parser.parse_args(["--config", str(config_file), *overrides])
    except (JsonArgError, SystemExit) as exc:
        raise _one_line(exc, parser) from None  # jsonargparse may also exit; never let it


def _section(ns: Namespace, name: str) -> dict[str, Any]:
    if name not in ns:
        return {}
    values = ns[name].as_dict()
    values.pop("name", None)
    return values


def _spec(parser: ArgumentParser, ns: Namespace, optim_names: list[str] | None) -> RunSpec:
    dump_ns = ns.clone()
    del dump_ns["config"]
    model_entry = MODELS.get(ns.model.name)
    trainer_cfg = TrainerConfig(**_section(ns, "trainer"))
    trainer_cfg.check("trainer")
    return RunSpec(
        seed=ns.seed,
        description=ns.description,
        task_name=ns.task.name if "task" in ns else None,
        task_args=_section(ns, "task"),
        model_name=ns.model.name,
        model_config=type(model_entry.config)(**_section(ns, "model")),
        data_name=ns.data.name if "data" in ns else None,
        data_args=_section(ns, "data"),
        optim=_optim(ns, optim_names, trainer_cfg),
        trainer=trainer_cfg,
        yaml_text=parser.dump(dump_ns, skip_unset=False),  # keep None fields visible
        runner=ns.runner,
        runner_config=_runner_config(ns),
    )


def _runner_config(ns: Namespace) -> Any:
    config = RUNNERS.get(ns.runner).config
    return None if config is None else type(config)(**_section(ns, ns.runner))
