"""Callbacks the engine always installs."""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import RichProgressBar

from attnlab.runs.clock import TrainClock
from attnlab.runs.rundir import RunDir


def step_seed(seed: int, step: int, micro_batch: int, rank: int) -> int:
    return (seed * 1_000_003 + step * 1_009 + micro_batch * 101 + rank) % (2**63 - 1)


class StepSeeding(L.Callback):
    """Reseed every RNG from (seed, step, micro-batch, rank) before each training batch.

    Randomness inside a step (dropout, noise, mask sampling) is then a function of
    the step alone, so a run resumed from a checkpoint continues exactly as an
    uninterrupted one would, with no RNG state to save.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        micro = batch_idx % trainer.accumulate_grad_batches
        s = step_seed(self.seed, trainer.global_step, micro, trainer.global_rank)
        torch.manual_seed(s)
        random.seed(s)
        np.random.seed(s % 2**32)


class StepProgressBar(RichProgressBar):
    """Rich progress bar that counts optimiser steps towards ``max_steps`` (training is step-based).

    Until the first step of this process ends, it says so ("first step", with "compiling"
    when ``trainer.compile`` is on): that step can take far longer than the others.
    """

    def __init__(self, *, compiling: bool = False) -> None:
        super().__init__()
        self.first = "train: first step, compiling" if compiling else "train: first step"
        self.waiting_for_first_step = True

    @property
    def total_train_batches(self) -> int | float:
        trainer = self.trainer
        return trainer.max_steps * trainer.accumulate_grad_batches

    def _get_train_description(self, current_epoch: int) -> str:
        return self.first if self.waiting_for_first_step else "train"

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if (
            self.waiting_for_first_step
            and self.progress is not None
            and self.train_progress_bar_id is not None
        ):
            self.waiting_for_first_step = False
            self.progress.update(self.train_progress_bar_id, description="train")
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


class TrainClockCallback(L.Callback):
    """Keeps a :class:`TrainClock` in every checkpoint, so a resumed run's wall time sums its segments."""

    def __init__(self) -> None:
        self.clock = TrainClock()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.clock.start()

    def state_dict(self) -> dict[str, Any]:
        return self.clock.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.clock.load_state_dict(state_dict)


class MarkRunning(L.Callback):
    """Marks the run folder running, with this process, once training starts (rank 0)."""

    def __init__(self, run: RunDir) -> None:
        self.run = run

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.run.mark_running()
