"""The DINO pre-training task (Caron et al. 2021, arXiv:2104.14294), as facebookresearch/dino
``main_dino.py`` trains (``train_dino``, ``train_one_epoch``): multi-crop views, the DINO loss with
centring and the teacher-temperature warm-up, AdamW with per-iteration lr and weight-decay
schedules, per-parameter gradient clipping, the last layer frozen for the first epoch(s), and the
EMA update of the teacher after every optimiser step with the scheduled momentum. Testing adds
DINO's weighted k-NN evaluation of the teacher backbone, beside the same evaluation of a randomly
initialised backbone (the floor).

Where each piece lives: model :mod:`attnlab.models.vit.dino`; loss :mod:`attnlab.objectives.dino`;
schedules and EMA :mod:`attnlab.objectives.dino_schedules`; views
:mod:`attnlab.data.ssl_images`; k-NN :mod:`attnlab.train.knn_eval`.

Recipe mapping: ``optim.lr`` is the official ``--lr``, for a batch of 256 (the lr used is
``lr * global_batch / 256``); ``optim.weight_decay`` the starting weight decay. The official
schedules count epochs; here an epoch is ``epoch_steps`` optimiser steps (a CPU run sees only part
of a pass over the data), and the schedules are laid out over ``ceil(max_steps / epoch_steps)``
such epochs. ``optim.schedule``, ``optim.warmup_steps`` and ``optim.min_lr_ratio`` do not apply
(``warmup_epochs`` and ``min_lr`` do).

State that resumes exactly: the centre is a buffer of the task (in every checkpoint); the
schedules are functions of the global step; the lr scheduler's step count is checkpointed; the EMA
runs inside ``optimizer_step`` so a checkpoint of step k holds the teacher of step k.
"""

from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.models.vit.dino import DINO
from attnlab.objectives.dino import (
    cancel_last_layer_gradients,
    clip_gradients,
    cross_view_loss,
    target_entropy,
    teacher_targets,
    updated_center,
)
from attnlab.objectives.dino_schedules import DINOSchedules, teacher_temperatures, teacher_update
from attnlab.objectives.vjepa_schedules import decay_groups
from attnlab.runs.config import OptimConfig
from attnlab.train.knn_eval import KNNConfig, KNNEvaluator, knn_metrics, start_knn
from attnlab.train.optim import StepScheduler
from attnlab.train.registry import register_task
from attnlab.train.ssl_figures import plot_cls_attention
from attnlab.train.task import Task
from attnlab.train.vjepa import as_config


@register_task("dino")
class DINOTask(Task):
    """DINO self-distillation; test metrics: ``loss``, ``knn_acc`` and ``knn_acc_random_init``."""

    center: torch.Tensor

    def __init__(
        self,
        *,
        model: nn.Module,
        optim: OptimConfig,
        epoch_steps: int = 100,
        warmup_epochs: int = 1,
        min_lr: float = 1e-6,
        weight_decay_end: float = 0.4,
        momentum_teacher: float = 0.996,
        warmup_teacher_temp: float = 0.04,
        teacher_temp: float = 0.04,
        warmup_teacher_temp_epochs: int = 0,
        student_temp: float = 0.1,
        center_momentum: float = 0.9,
        freeze_last_layer: int = 1,
        clip_grad: float | None = 3.0,
        knn: KNNConfig | None = None,
        eval_loss_images: int = 32,
    ) -> None:
        super().__init__(model=model, optim=optim)
        if not isinstance(model, DINO):
            raise ConfigError(f"task dino trains a DINO model (dino-*), got {type(model).__name__}")
        if not isinstance(optim, OptimConfig) or optim.name != "adamw":
            raise ConfigError("task dino uses one AdamW optimiser (optim.name: adamw), as main_dino.py")
        if epoch_steps < 1 or warmup_epochs < 0 or freeze_last_layer < 0 or warmup_teacher_temp_epochs < 0:
            raise ConfigError(
                "task.epoch_steps must be >= 1; warmup_epochs, freeze_last_layer and "
                f"warmup_teacher_temp_epochs >= 0; got {epoch_steps}, {warmup_epochs}, {freeze_last_layer}, "
                f"{warmup_teacher_temp_epochs}"
            )
        if clip_grad is not None and clip_grad <= 0:
            raise ConfigError(f"task.clip_grad must be > 0 or null, got {clip_grad}")
        if student_temp <= 0 or not 0 <= center_momentum <= 1:
            raise ConfigError(
                "task.student_temp must be > 0 and center_momentum in [0, 1], "
                f"got {student_temp}, {center_momentum}"
            )
        self.epoch_steps, self.warmup_epochs, self.min_lr = epoch_steps, warmup_epochs, min_lr
        self.weight_decay_end, self.momentum_teacher = weight_decay_end, momentum_teacher
        self.warmup_teacher_temp, self.teacher_temp = warmup_teacher_temp, teacher_temp
        self.warmup_teacher_temp_epochs = warmup_teacher_temp_epochs
        self.student_temp, self.center_momentum = student_temp, center_momentum
        self.freeze_last_layer, self.clip_grad = freeze_last_layer, clip_grad
        if eval_loss_images < 1:
            raise ConfigError(f"task.eval_loss_images must be >= 1, got {eval_loss_images}")
        self.eval_loss_images = eval_loss_images
        self.knn_config = as_config(KNNConfig, knn or KNNConfig(), "task.knn")
        self.knn_config.check()
        self._knn: KNNEvaluator | None = None
        self.register_buffer("center", torch.zeros(1, model.config.out_dim))
        self._last_momentum = momentum_teacher
        self._last_entropy = torch.tensor(float("nan"))

    @property
    def dino(self) -> DINO:
        """``self.model``, typed (checked in ``__init__``)."""
        assert isinstance(self.model, DINO)
        return self.model

    # -- schedules -------------------------------------------------------------------------------
    def epochs(self) -> int:
        return math.ceil(self.trainer.max_steps / self.epoch_steps)

    def epoch(self) -> int:
        """The official epoch of the current iteration (teacher temperature, last-layer freeze)."""
        return min(self.global_step // self.epoch_steps, self.epochs() - 1)

    @cached_property
    def schedules(self) -> DINOSchedules:
        optim = self.optim
        assert isinstance(optim, OptimConfig)
        data: Any = getattr(self.trainer, "datamodule", None)
        per_device = getattr(data, "batch_size", 256)
        epochs = self.epochs()
        if self.warmup_epochs > epochs or self.warmup_teacher_temp_epochs > epochs:
            raise ConfigError(
                f"task.warmup_epochs={self.warmup_epochs} and warmup_teacher_temp_epochs="
                f"{self.warmup_teacher_temp_epochs} must fit in the run's {epochs} epochs of "
                f"{self.epoch_steps} steps (trainer.max_steps / task.epoch_steps)"
            )
        schedules = DINOSchedules(
            epochs=epochs,
            iters_per_epoch=self.epoch_steps,
            batch_size=per_device * self.trainer.world_size,
            lr=optim.lr,
            min_lr=self.min_lr,
            warmup_epochs=self.warmup_epochs,
            weight_decay=optim.weight_decay,
            weight_decay_end=self.weight_decay_end,
            momentum_teacher=self.momentum_teacher,
        )
        schedules.check()
        return schedules

    @cached_property
    def temperatures(self) -> list[float]:
        return teacher_temperatures(
            self.warmup_teacher_temp, self.teacher_temp, self.warmup_teacher_temp_epochs, self.epochs()
        )

    def configure_optimizers(self) -> Any:
        optim = self.optim
        assert isinstance(optim, OptimConfig)
        groups = decay_groups(self.dino.student)  # the teacher is never optimised
        optimizer = torch.optim.AdamW(groups, lr=optim.lr, betas=optim.betas)
        last = self.schedules.epochs * self.schedules.iters_per_epoch - 1  # then the last value
        scheduler = StepScheduler(optimizer, self.schedules, offset=0, last=last)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(
        self, optimizer: torch.optim.Optimizer, gradient_clip_val: float | int | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:  # fmt: skip
        """Official order after ``loss.backward()``: clip each parameter's gradient to ``clip_grad``,
        then drop the last layer's gradients during the first ``freeze_last_layer`` epochs."""
        if gradient_clip_val is not None:  # trainer.gradient_clip_val: over everything, as Lightning does
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        if self.clip_grad is not None:
            clip_gradients(self.dino.student, self.clip_grad)
        cancel_last_layer_gradients(self.dino.student.head.last_layer, self.epoch(), self.freeze_last_layer)

    def optimizer_step(
        self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None
    ) -> None:
        """The optimiser step of iteration it, then ``teacher = m_it teacher + (1 - m_it) student``.

        Here rather than in ``on_train_batch_end``: Lightning's checkpoint callback runs before that
        hook, so a checkpoint of step k would hold the teacher of step k - 1. During this hook
        ``global_step`` is still ``it`` (Lightning counts the step once it returns)."""
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        steps = self.schedules.epochs * self.schedules.iters_per_epoch
        momentum = self.schedules.momentum_at(min(self.global_step, steps - 1))
        teacher_update(self.dino.teacher, self.dino.student, momentum)
        self._last_momentum = momentum

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.log("train/teacher_momentum", self._last_momentum, batch_size=1)
        self.log("train/teacher_temp", self.temperatures[self.epoch()], batch_size=1)
        group = self.trainer.optimizers[0].param_groups[0]
        self.log("train/weight_decay", group["weight_decay"], batch_size=1)
        self.log("train/teacher_entropy", self._last_entropy, batch_size=1)

    # -- the loss ---------------------------------------------------------------------------------
    def _loss(self, crops: list[torch.Tensor], *, update_center: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss and the teacher targets' entropy (the loss minus it is the mean KL)."""
        out = self.dino(crops)
        targets = teacher_targets(out.teacher, self.center, self.temperatures[self.epoch()])
        loss = cross_view_loss(out.student, targets, self.student_temp)
        if update_center:  # after the loss, from this batch's raw teacher outputs (the official order)
            self.center = updated_center(self.center, out.teacher.detach(), self.center_momentum)
        return loss, target_entropy(targets)

    def loss_terms(self, batch: Any) -> dict[str, torch.Tensor]:
        loss, self._last_entropy = self._loss(batch.crops, update_center=True)
        return {"dino": loss}

    def metrics(self, batch: Any) -> dict[str, torch.Tensor]:
        """The loss against the current centre (left unchanged) on the first ``eval_loss_images``
        images of the batch (an estimate: k-NN needs the whole test set, the loss does not);
        k-NN accuracies when testing."""
        crops = [crop[: self.eval_loss_images] for crop in batch.crops]
        loss, entropy = self._loss(crops, update_center=False)
        values = {"loss": loss, "teacher_entropy": entropy, "kl": loss - entropy}
        if self.trainer.testing:
            values |= knn_metrics(self._knn, batch)
        return values

    # -- evaluation -------------------------------------------------------------------------------
    def on_test_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        self._knn = start_knn(self.dino, self.knn_config, datamodule, self.device)

    @torch.no_grad()
    def report_figures(self, datamodule: L.LightningDataModule, out_dir: Path) -> dict[str, Path]:
        """The teacher's last-block [CLS] attention per head over six test images."""
        batch = next(iter(datamodule.test_dataloader()))
        images = batch.images[:6].to(self.device)
        maps = self.dino.backbone().eval().cls_attention(images)  # (B, heads, h, w)
        names = getattr(datamodule, "class_names", None)
        titles = [names[int(y)] for y in batch.label[:6]] if names else None
        path = plot_cls_attention(images.cpu(), maps.cpu(), out_dir / "cls_attention.png", titles=titles)
        return {
            "Teacher's last block: [CLS] attention to the patches, per head (min-max scaled per image)": path
        }
