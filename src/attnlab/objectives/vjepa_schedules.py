"""V-JEPA's optimisation schedules and the EMA target update, as pure functions of the step.

Reference: facebookresearch/jepa ``src/utils/schedulers.py`` (``WarmupCosineSchedule``,
``CosineWDSchedule``), ``app/vjepa/utils.py`` (``init_opt``) and ``app/vjepa/train.py``
(the momentum generator and the EMA update after ``optimizer.step()``).

With ``T = int(ipe_scale * epochs * ipe)`` (``ipe_scale`` 1.25 stretches every schedule past the
end of training, so none reaches its final value) and ``W = int(warmup_epochs * ipe)``, the
optimiser step k = 1, 2, ... (the official schedulers step before each iteration) uses

* lr: ``start + k / W * (ref - start)`` while k < W, then
  ``max(final, final + (ref - final) * (1 + cos(pi * (k - W) / (T - W))) / 2)``;
* weight decay (weight matrices only; biases and 1-D tensors never decay):
  ``final + (ref - final) * (1 + cos(pi * k / T)) / 2``, clamped at ``final`` (0.04 -> 0.4);
* EMA momentum for the update after step k: ``m0 + (k - 1) * (m1 - m0) / (ipe * epochs * ipe_scale)``
  (0.998 -> 1.0); the target becomes ``m * target + (1 - m) * online``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from attnlab.errors import ConfigError


def half_cosine(base: float, final: float, progress: float) -> float:
    """``final + (base - final) * (1 + cos(pi * progress)) / 2``: ``base`` at progress 0, ``final`` at 1.

    The cosine annealing that V-JEPA's and DINO's schedules (:mod:`attnlab.objectives.dino_schedules`)
    share; they differ in how they count steps and warm up, not in this curve."""
    return final + (base - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class VJEPASchedules:
    """Official ``init_opt`` arguments in steps: ``total_steps`` = ipe * num_epochs."""

    total_steps: int
    warmup_steps: int
    start_lr: float = 2e-4
    lr: float = 6.25e-4
    final_lr: float = 1e-6
    weight_decay: float = 0.04
    final_weight_decay: float = 0.4
    ema: tuple[float, float] = (0.998, 1.0)
    ipe_scale: float = 1.25

    def check(self) -> None:
        # a warm-up longer than the run is allowed (the lr then only rises, as the official one would)
        if self.total_steps < 1 or self.warmup_steps < 0:
            raise ConfigError(
                f"schedules need total_steps >= 1 and warmup_steps >= 0, "
                f"got {self.total_steps}, {self.warmup_steps}"
            )
        if self.ipe_scale < 1:
            raise ConfigError(f"ipe_scale must be >= 1 (it stretches the schedules), got {self.ipe_scale}")
        if not 0 <= self.ema[0] <= self.ema[1] <= 1:
            raise ConfigError(f"ema must satisfy 0 <= start <= end <= 1, got {self.ema}")
        if min(self.start_lr, self.lr, self.final_lr, self.weight_decay, self.final_weight_decay) < 0:
            raise ConfigError("learning rates and weight decays must be >= 0")

    def stretched(self) -> int:
        """``T``: the length every schedule is laid out over."""
        return int(self.ipe_scale * self.total_steps)

    def lr_at(self, step: int) -> float:
        """Learning rate of optimiser step ``step`` (1-based, as the official scheduler counts)."""
        if step < self.warmup_steps:
            return self.start_lr + step / max(1, self.warmup_steps) * (self.lr - self.start_lr)
        progress = (step - self.warmup_steps) / max(1, self.stretched() - self.warmup_steps)
        return max(self.final_lr, half_cosine(self.lr, self.final_lr, progress))

    def weight_decay_at(self, step: int) -> float:
        """Weight decay of optimiser step ``step`` (1-based), for the decayed groups."""
        wd = half_cosine(self.weight_decay, self.final_weight_decay, step / self.stretched())
        if self.final_weight_decay <= self.weight_decay:
            return max(self.final_weight_decay, wd)
        return min(self.final_weight_decay, wd)

    def momentum_at(self, step: int) -> float:
        """EMA momentum of the update that follows optimiser step ``step`` (1-based)."""
        m0, m1 = self.ema
        return m0 + (step - 1) * (m1 - m0) / (self.total_steps * self.ipe_scale)


class StepSchedules(Protocol):
    """What :func:`apply_schedules` reads: the lr and weight decay of a step, counted as the schedule
    counts them (V-JEPA: optimiser steps from 1; DINO: global iterations from 0)."""

    def lr_at(self, step: int) -> float: ...

    def weight_decay_at(self, step: int) -> float: ...


def decay_groups(*modules: nn.Module) -> list[dict[str, object]]:
    """The official ``init_opt`` groups: per module, the weights that decay, then (``no_decay``)
    biases and 1-D tensors, whose decay stays 0 whatever the schedule says."""
    decay: list[dict[str, object]] = []
    exempt: list[dict[str, object]] = []
    for module in modules:
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        decay.append({"params": [p for n, p in named if "bias" not in n and p.dim() != 1], "no_decay": False})
        exempt.append(
            {
                "params": [p for n, p in named if "bias" in n or p.dim() == 1],
                "no_decay": True,
                "weight_decay": 0.0,
            }
        )
    return decay + exempt


def apply_schedules(
    optimizer: torch.optim.Optimizer, schedules: StepSchedules, step: int
) -> tuple[float, float]:
    """Set every group's lr and every decayed group's weight decay for optimiser step ``step``."""
    lr, wd = schedules.lr_at(step), schedules.weight_decay_at(step)
    for group in optimizer.param_groups:
        group["lr"] = lr
        if not group.get("no_decay", False):
            group["weight_decay"] = wd
    return lr, wd


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``target = momentum * target + (1 - momentum) * online``, parameter by parameter."""
    target_params, online_params = list(target.parameters()), list(online.parameters())
    if len(target_params) != len(online_params):
        raise ConfigError("the EMA target and the online model must have the same parameters")
    for k, q in zip(target_params, online_params, strict=True):
        k.mul_(momentum).add_((1.0 - momentum) * q.detach())  # the official order of operations
