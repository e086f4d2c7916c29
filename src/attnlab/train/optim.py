"""Optimisers and schedules from the recipe's ``optim``: one :class:`OptimConfig`, or several by name.

Several optimisers each own one submodule of the model (``params``); together they must
cover every trainable parameter exactly once, which :func:`partition` checks.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from attnlab.errors import ConfigError, did_you_mean
from attnlab.objectives.vjepa_schedules import StepSchedules
from attnlab.runs.config import NamedOptimConfig, OptimConfig


def partition(model: nn.Module, optims: dict[str, NamedOptimConfig]) -> dict[str, list[nn.Parameter]]:
    """Each named optimiser's parameters; every trainable parameter belongs to exactly one."""
    owner: dict[int, str] = {}
    owned: dict[str, list[nn.Parameter]] = {}
    for name, cfg in optims.items():
        owned[name] = []
        for path in _paths(name, cfg):
            for p in _parameters_at(model, path, where=f"optim.{name}.params"):
                if id(p) in owner and owner[id(p)] != name:
                    pname = _param_name(model, p)
                    raise ConfigError(
                        f"parameter '{pname}' is owned by optim.{owner[id(p)]} and optim.{name}"
                    )
                if id(p) not in owner and p.requires_grad:
                    owner[id(p)] = name
                    owned[name].append(p)
    orphans = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in owner]
    if orphans:
        more = f" and {len(orphans) - 3} more" if len(orphans) > 3 else ""
        raise ConfigError(
            f"no optimiser owns parameter {', '.join(repr(n) for n in orphans[:3])}{more}; "
            "add it to an optimiser's params"
        )
    return owned


def _paths(name: str, cfg: NamedOptimConfig) -> list[str]:
    if cfg.params is None:
        return [name]
    return [cfg.params] if isinstance(cfg.params, str) else list(cfg.params)


def _parameters_at(model: nn.Module, path: str, *, where: str) -> list[nn.Parameter]:
    """The parameters of submodule ``path``, or parameter ``path`` itself."""
    modules = dict(model.named_modules())
    if path and path in modules:
        return list(modules[path].parameters())
    params = dict(model.named_parameters())
    if path in params:
        return [params[path]]
    children = [n for n, _ in model.named_children()] + [n for n, _ in model.named_parameters(recurse=False)]
    hint = did_you_mean(path, [*modules, *params])
    raise ConfigError(
        f"{where}: the model has no submodule or parameter '{path}'{hint}; top level: {', '.join(children)}"
    )


def _param_name(model: nn.Module, param: nn.Parameter) -> str:
    return next(n for n, p in model.named_parameters(remove_duplicate=False) if p is param)


def param_groups(params: nn.Module | list[nn.Parameter], weight_decay: float) -> list[dict[str, object]]:
    """Weight decay on weight matrices only: biases, norms and embeddings-as-vectors are exempt."""
    decay, no_decay = [], []
    for p in params.parameters() if isinstance(params, nn.Module) else params:
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(
    model: nn.Module | list[nn.Parameter], cfg: OptimConfig, *, where: str = "optim"
) -> torch.optim.Optimizer:
    """The optimiser of ``model`` (or of the parameters one named optimiser owns)."""
    if cfg.lr <= 0:
        raise ConfigError(f"{where}.lr must be > 0, got {cfg.lr}")
    groups = param_groups(model, cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    if cfg.name == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)


def lr_factor(step: int, *, total_steps: int, cfg: OptimConfig) -> float:
    """Linear warm-up, then constant or cosine decay to ``min_lr_ratio``."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    span = max(1, total_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps=total_steps, cfg=cfg)
    )


class StepScheduler(torch.optim.lr_scheduler.LRScheduler):
    """Per-iteration lr (every group) and weight decay (groups without ``no_decay``) read from
    ``schedules`` at step ``last_epoch + offset`` (V-JEPA counts optimiser steps from 1: offset 1;
    DINO iterations from 0: offset 0), held at ``last`` once past it when given."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, schedules: StepSchedules, offset: int, last: int | None = None
    ) -> None:
        self.schedules, self.offset, self.last = schedules, offset, last
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        step = self.last_epoch + self.offset
        step = step if self.last is None else min(step, self.last)
        wd = self.schedules.weight_decay_at(step)
        for group in self.optimizer.param_groups:
            if not group.get("no_decay", False):
                group["weight_decay"] = wd
        return [self.schedules.lr_at(step)] * len(self.optimizer.param_groups)

    def state_dict(self) -> dict[str, Any]:
        # the schedules are the task's config, not state: checkpoints hold only plain values
        return {k: v for k, v in super().state_dict().items() if k != "schedules"}
