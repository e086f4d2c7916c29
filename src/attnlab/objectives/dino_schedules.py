"""DINO's schedules: lr, weight decay and teacher momentum per iteration; teacher temperature per epoch.

Reference: facebookresearch/dino ``utils.py`` (``cosine_scheduler``) and ``main_dino.py`` (how
``train_dino`` builds the three schedules and ``DINOLoss`` its temperatures).

``cosine_schedule`` lays out one value per iteration ``it = epoch * iters_per_epoch + i`` (0-based):

* warm-up: ``linspace(start_warmup, base, W)`` with ``W = warmup_epochs * iters_per_epoch`` and the
  endpoint included, so ``base`` is reached at iteration W - 1 and the cosine part starts at
  ``base`` again: the official schedule repeats its peak value, and we keep that;
* then ``final + (base - final) * (1 + cos(pi * i / L)) / 2`` for i = 0 .. L - 1, L the remaining
  iterations: it never reaches ``final`` (the last value is one step short of it).

``main_dino.py`` uses it for the lr (``lr * batch_size / 256`` -> ``min_lr``, warm-up from 0), the
weight decay (``weight_decay`` -> ``weight_decay_end``, no warm-up) and the teacher's EMA momentum
(``momentum_teacher`` -> 1, no warm-up). The teacher temperature warms up per epoch, by
``linspace(warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs)`` (endpoint included),
then stays at ``teacher_temp``.

The EMA step itself is V-JEPA's (:func:`attnlab.objectives.vjepa_schedules.ema_update`): both
official codes update ``teacher = m * teacher + (1 - m) * student`` parameter by parameter, after
the optimiser step, with the momentum of the current iteration. So are the parameter groups
(:func:`attnlab.objectives.vjepa_schedules.decay_groups`: biases and 1-D tensors never decay, as
``utils.get_params_groups``) and setting them per iteration
(:func:`attnlab.objectives.vjepa_schedules.apply_schedules`, which reads ``lr_at`` and
``weight_decay_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from torch import nn

from attnlab.errors import ConfigError
from attnlab.objectives.vjepa_schedules import ema_update, half_cosine


def linspace(start: float, stop: float, num: int) -> list[float]:
    """``numpy.linspace(start, stop, num)`` value for value (``start + i * step``, the last one ``stop``)."""
    if num <= 1:
        return [start] * num
    step = (stop - start) / (num - 1)
    return [start + i * step for i in range(num - 1)] + [stop]


def cosine_schedule(
    base: float,
    final: float,
    epochs: int,
    iters_per_epoch: int,
    warmup_epochs: int = 0,
    start_warmup: float = 0.0,
) -> list[float]:
    """The official ``cosine_scheduler``: one value per iteration, ``epochs * iters_per_epoch`` in all."""
    if epochs < 1 or iters_per_epoch < 1:
        raise ConfigError(
            f"a schedule needs epochs >= 1 and iters_per_epoch >= 1, got {epochs}, {iters_per_epoch}"
        )
    if not 0 <= warmup_epochs <= epochs:
        raise ConfigError(f"warmup_epochs must be in [0, epochs={epochs}], got {warmup_epochs}")
    warmup = linspace(start_warmup, base, warmup_epochs * iters_per_epoch)
    length = (epochs - warmup_epochs) * iters_per_epoch
    return warmup + [half_cosine(base, final, i / length) for i in range(length)]


def teacher_temperatures(warmup_temp: float, temp: float, warmup_epochs: int, epochs: int) -> list[float]:
    """One teacher temperature per epoch: a linear warm-up (endpoint included), then constant."""
    if not 0 <= warmup_epochs <= epochs:
        raise ConfigError(f"warmup_teacher_temp_epochs must be in [0, epochs={epochs}], got {warmup_epochs}")
    if min(warmup_temp, temp) <= 0:
        raise ConfigError(f"teacher temperatures must be > 0, got {warmup_temp}, {temp}")
    return linspace(warmup_temp, temp, warmup_epochs) + [temp] * (epochs - warmup_epochs)


@dataclass(frozen=True)
class DINOSchedules:
    """``main_dino.py``'s arguments (defaults: its ViT-S/16 values); ``batch_size`` is over all devices."""

    epochs: int
    iters_per_epoch: int
    batch_size: int = 64
    lr: float = 5e-4  # for a batch of 256: the lr used is lr * batch_size / 256
    min_lr: float = 1e-6
    warmup_epochs: int = 10
    weight_decay: float = 0.04
    weight_decay_end: float = 0.4
    momentum_teacher: float = 0.996

    def check(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if min(self.lr, self.min_lr, self.weight_decay, self.weight_decay_end) < 0:
            raise ConfigError("learning rates and weight decays must be >= 0")
        if not 0 <= self.momentum_teacher <= 1:
            raise ConfigError(f"momentum_teacher must be in [0, 1], got {self.momentum_teacher}")

    @cached_property
    def lr_values(self) -> list[float]:
        self.check()
        # the linear scaling rule of main_dino.py
        peak = self.lr * self.batch_size / 256.0
        return cosine_schedule(peak, self.min_lr, self.epochs, self.iters_per_epoch, self.warmup_epochs)

    @cached_property
    def weight_decay_values(self) -> list[float]:
        self.check()
        return cosine_schedule(self.weight_decay, self.weight_decay_end, self.epochs, self.iters_per_epoch)

    @cached_property
    def momentum_values(self) -> list[float]:
        self.check()
        return cosine_schedule(self.momentum_teacher, 1.0, self.epochs, self.iters_per_epoch)

    def lr_at(self, step: int) -> float:
        """The lr of global iteration ``step`` = epoch * iters_per_epoch + i (0-based, as main_dino.py)."""
        return self.lr_values[self._index(step)]

    def weight_decay_at(self, step: int) -> float:
        return self.weight_decay_values[self._index(step)]

    def momentum_at(self, step: int) -> float:
        """The teacher's EMA momentum for the update after iteration ``step``'s optimiser step."""
        return self.momentum_values[self._index(step)]

    def _index(self, step: int) -> int:
        total = self.epochs * self.iters_per_epoch
        if not 0 <= step < total:
            raise ConfigError(f"iteration {step} is outside the schedule's [0, {total})")
        return step


def teacher_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """The EMA step after the optimiser step: ``teacher = m * teacher + (1 - m) * student``.

    The teacher is backbone and head together, as the student; ``ema_update`` checks both have the
    same parameters. Buffers (BatchNorm statistics in a ``use_bn`` head) are not averaged, as in
    the official code, which also averages ``parameters()`` only."""
    if not 0 <= momentum <= 1:
        raise ConfigError(f"EMA momentum must be in [0, 1], got {momentum}")
    ema_update(teacher, student, momentum)
