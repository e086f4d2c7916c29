"""Two-teacher distillation in one stage (seed 004, the distillation thesis's Eq. 4)::

    L = CE(S) + CE(T1) + CE(T2) + L_KD + L_Attn

on a :class:`~attnlab.models.vit.distill.Distillation` model. The KD and attention terms are
:func:`attnlab.objectives.distill.distill_loss`'s (``task.distill``: λ1, λ2, the weights,
temperature, heads, layers); the cross-entropies of the teachers train their adapted parts (head,
and in partial-1 the last block and norm) while the student learns from them. A teacher without
trainable parameters gets no CE term.

Attention is captured only where it is used: the student's transferred layer with
``capture(student, differentiable=True, layers=[that layer])`` (the gradient of L_Attn reaches the
student through its weights; every other layer keeps the fused kernel), a teacher's layer only when
its attention weight (``attention_weight`` times λ2 or 1 − λ2) is not 0, detached.

Test metrics: ``acc`` (the student), ``acc_teacher1``, ``acc_teacher2``, each loss term; the
report draws the mean attention distance per layer and head of both teachers and the student
(:mod:`attnlab.explain.attention_distance`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import ConfigError, unknown
from attnlab.explain.attention_distance import layer_attention_distances, plot_attention_distance
from attnlab.explain.capture import attention_layers, capture
from attnlab.models.vit.classifier import ViTClassifier
from attnlab.models.vit.distill import Distillation
from attnlab.models.vit.image_vit import ImageViT
from attnlab.objectives.distill import DistillConfig, distill_loss
from attnlab.runs.config import OptimConfig
from attnlab.train.registry import register_task
from attnlab.train.task import Batch, Task

Grid = tuple[int, int]


def as_distill_config(value: object) -> DistillConfig:
    """``task.distill`` as a DistillConfig: the parser hands it over as a mapping (lists for tuples)."""
    if isinstance(value, DistillConfig):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"task.distill must be a mapping of DistillConfig fields, got {value!r}")
    names = {f.name for f in dataclasses.fields(DistillConfig)}
    for key in value:
        if key not in names:
            raise unknown("task.distill key", str(key), names)
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    return DistillConfig(**fields)


def last_layer(module: nn.Module) -> str:
    """The qualified name of ``module``'s last attention layer (capture's name for it)."""
    return list(attention_layers(module))[-1]


def _grid(vit: ImageViT, image_size: int) -> Grid:
    side = image_size // vit.config.patch_size
    return (side, side)


@register_task("distillation")
class DistillationTask(Task):
    """Student, teachers' adaptation and distillation in one stage; ``val/acc`` is the student's."""

    monitor = "val/acc"
    monitor_mode = "max"

    def __init__(self, *, model: nn.Module, optim: OptimConfig, distill: DistillConfig | None = None) -> None:
        super().__init__(model=model, optim=optim)
        if not isinstance(model, Distillation):
            raise ConfigError(
                f"task distillation trains a Distillation model (distill-*), got {type(model).__name__}"
            )
        self.distill = as_distill_config(distill or DistillConfig())
        self.student_layer = self._layer(model.student, self.distill.student_layer, "student_layer")
        self.teacher_layers = tuple(
            self._layer(t, self.distill.teacher_layers[i], f"teacher_layers[{i}]")
            for i, t in enumerate(model.teachers)
        )
        self._check_heads_and_grids()

    @property
    def net(self) -> Distillation:
        """The model, typed (not a second submodule: the checkpoint holds it once, as ``model``)."""
        assert isinstance(self.model, Distillation)  # checked in __init__; narrows the type
        return self.model

    # ---- checks before training: one line each --------------------------------------------------

    @staticmethod
    def _layer(module: nn.Module, name: str | None, what: str) -> str:
        layers = list(attention_layers(module))
        if name is None:
            return layers[-1]
        if name not in layers:
            raise unknown(f"task.distill.{what}", name, layers)
        return name

    def _check_heads_and_grids(self) -> None:
        c, student = self.distill, self.net.student.vit
        for i, head in enumerate(c.student_heads):
            if head >= student.config.num_heads:
                raise ConfigError(
                    f"task.distill.student_heads[{i}] = {head} is out of range: the student has "
                    f"{student.config.num_heads} heads (0..{student.config.num_heads - 1})"
                )
        size = self.net.student.config.img_size
        for i, (teacher, weight) in enumerate(zip(self.net.teachers, c.attention_weights, strict=True)):
            vit, name = teacher.backbone, c.teacher_names[i]
            fixed = c.teacher_heads[i]
            if fixed is not None and fixed >= vit.config.num_heads:
                raise ConfigError(
                    f"task.distill.teacher_heads[{i}] = {fixed} is out of range: {name} has "
                    f"{vit.config.num_heads} heads (0..{vit.config.num_heads - 1})"
                )
            if weight == 0:
                continue  # its attention is never read
            if (
                vit.num_prefix_tokens != c.num_prefix_tokens
                or student.num_prefix_tokens != c.num_prefix_tokens
            ):
                raise ConfigError(
                    f"{name} has {vit.num_prefix_tokens} prefix token(s), the student "
                    f"{student.num_prefix_tokens}; task.distill.num_prefix_tokens is {c.num_prefix_tokens}"
                )
            t_grid, s_grid = _grid(vit, size), _grid(student, size)
            if t_grid != s_grid and c.interpolation == "none":
                raise ConfigError(
                    f"{name}'s token grid {t_grid[0]}x{t_grid[1]} (patch {vit.config.patch_size}) differs "
                    f"from the student's {s_grid[0]}x{s_grid[1]} (patch {student.config.patch_size}) on "
                    f"{size} px images; set --task.distill.interpolation bilinear or use teachers of the "
                    "student's patch size"
                )

    # ---- the loss -------------------------------------------------------------------------------

    @staticmethod
    def _run(
        module: nn.Module, images: torch.Tensor, layer: str | None, *, differentiable: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The module's logits and, when ``layer`` is named, that layer's attention (else None)."""
        if layer is None:
            return module(images).logits, None
        with capture(module, differentiable=differentiable, layers=[layer]) as rec:
            logits = module(images).logits
        return logits, rec[layer]

    def _forward(
        self, images: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], dict[str, torch.Tensor | None]]:
        """Logits of student and teachers, and the attention maps distill_loss needs (None: not needed)."""
        weights = self.distill.attention_weights
        wanted = self.student_layer if any(w > 0 for w in weights) else None
        logits, student_map = self._run(self.net.student, images, wanted, differentiable=True)
        maps: dict[str, torch.Tensor | None] = {"student": student_map}
        teacher_logits = []
        for i, (teacher, weight) in enumerate(zip(self.net.teachers, weights, strict=True)):
            t_logits, maps[f"teacher{i + 1}"] = self._run(
                teacher, images, self.teacher_layers[i] if weight > 0 else None
            )
            teacher_logits.append(t_logits)
        return logits, (teacher_logits[0], teacher_logits[1]), maps

    def _terms(
        self, batch: Batch
    ) -> tuple[
        dict[str, torch.Tensor], torch.Tensor, tuple[torch.Tensor, torch.Tensor], tuple[int | None, ...]
    ]:
        images, labels = batch["input"], batch["label"]
        logits, teacher_logits, maps = self._forward(images)
        terms = {"ce_student": F.cross_entropy(logits, labels)}
        for name, teacher, t_logits in zip(
            self.distill.teacher_names, self.net.teachers, teacher_logits, strict=True
        ):
            if teacher.trainable_parameters() > 0:
                terms[f"ce_{name}"] = F.cross_entropy(t_logits, labels)
        size = images.shape[-1]
        loss = distill_loss(
            self.distill,
            logits,
            teacher_logits,
            student_attention=maps["student"],
            teacher_attention=(maps["teacher1"], maps["teacher2"]),
            student_grid=_grid(self.net.student.vit, size),
            teacher_grids=(_grid(self.net.teacher1.backbone, size), _grid(self.net.teacher2.backbone, size)),
        )
        return terms | loss.terms(), logits, teacher_logits, loss.teacher_heads

    def loss_terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        terms, _, _, heads = self._terms(batch)
        for name, head in zip(self.distill.teacher_names, heads, strict=True):
            if head is not None and self.training:  # which head Attention Confidence picked
                self.log(f"train/head_{name}", float(head), batch_size=batch["label"].shape[0])
        return terms

    def metrics(self, batch: Batch) -> dict[str, torch.Tensor]:
        terms, logits, teacher_logits, _ = self._terms(batch)
        labels = batch["label"]
        values = {"acc": (logits.argmax(-1) == labels).float().mean()}
        for name, t_logits in zip(self.distill.teacher_names, teacher_logits, strict=True):
            values[f"acc_{name}"] = (t_logits.argmax(-1) == labels).float().mean()
        values |= {k: v.detach() for k, v in terms.items()}
        return values | {"loss": torch.stack(list(terms.values())).sum().detach()}

    # ---- the report -----------------------------------------------------------------------------

    @torch.no_grad()
    def report_figures(self, datamodule: L.LightningDataModule, out_dir: Path) -> dict[str, Path]:
        self.model.eval()
        images = next(iter(datamodule.test_dataloader()))["input"][:64].to(self.device)
        names = dict(zip(self.distill.teacher_names, ("CL (DINO)", "MIM (MAE)"), strict=True))
        parts: dict[str, tuple[nn.Module, ImageViT]] = {
            f"{name}: {kind}": (teacher, teacher.backbone)
            for (name, kind), teacher in zip(names.items(), self.net.teachers, strict=True)
        }
        student: ViTClassifier = self.net.student
        parts["student"] = (student, student.vit)
        series = {}
        for label, (module, vit) in parts.items():
            with capture(module) as rec:
                module(images)
            series[label] = layer_attention_distances(
                rec,
                _grid(vit, images.shape[-1]),
                vit.config.patch_size,
                num_prefix_tokens=vit.num_prefix_tokens,
            )
        path = plot_attention_distance(series, out_dir / "attention_distance.png")
        return {"Mean attention distance per layer (dots: heads, line: their mean), test images": path}
