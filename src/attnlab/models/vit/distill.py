"""Two self-supervised teachers and a small ViT student in one model: the distillation thesis (seed
004) trains the teachers' adaptation and the student in one stage,
``L = CE_S + CE_T1 + CE_T2 + L_KD + L_Attn`` (the losses are :mod:`attnlab.objectives.distill`'s
and the ``distillation`` task's; this file holds only the architecture).

``teacher1`` (contrastive: DINO) and ``teacher2`` (masked image modelling: MAE) are
:class:`~attnlab.models._submodel.SubModel` fields the engine builds: a pre-training run
(``init_from: runs/dino-fmnist/main``) or a preset ``name``. Each model's ``backbone()`` is wrapped
in an :class:`AdaptedViT` whose ``mode`` is ``teacher1_mode`` / ``teacher2_mode`` (``partial-1`` as
the thesis: the last block, final norm and a new head train together with the student). The
student is a SubModel too (the preset ``vit-student-p4``, or a run to continue from).

Deviation: the thesis distils into DeiT-Ti on ImageNet from ViT-B teachers; here everything is
scaled to Fashion-MNIST (see docs/distillation.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.models._registry import register_model
from attnlab.models._submodel import SubModel, as_submodel, built_or_preset
from attnlab.models.vit.classifier import AdaptedViT, AdaptedViTConfig, AdaptMode, ViTClassifier


@dataclass
class DistillationConfig:
    """Two pre-trained teachers (adapted by their modes) and the student, all built by the engine."""

    teacher1: SubModel | str = field(default_factory=lambda: SubModel(name="mae-vit-tiny-p4"))  # CL (DINO)
    teacher2: SubModel | str = field(default_factory=lambda: SubModel(name="mae-vit-tiny-p4"))  # MIM (MAE)
    student: SubModel | str = field(default_factory=lambda: SubModel(name="vit-student-p4"))
    teacher1_mode: AdaptMode = "partial-1"
    teacher2_mode: AdaptMode = "partial-1"
    num_classes: int = 10
    probe_norm: bool = True  # teachers in linear mode: BatchNorm without affine before the head

    def __post_init__(self) -> None:
        for name in ("teacher1", "teacher2", "student"):
            setattr(self, name, as_submodel(getattr(self, name), f"model.{name}"))

    def teacher_config(self, index: int) -> AdaptedViTConfig:
        sub = (self.teacher1, self.teacher2)[index]
        mode = (self.teacher1_mode, self.teacher2_mode)[index]
        return AdaptedViTConfig(
            pretrained=sub, mode=mode, num_classes=self.num_classes, probe_norm=self.probe_norm
        )


@dataclass
class DistillationOutput:
    """The student's logits and features, and each adapted teacher's logits."""

    logits: torch.Tensor  # (B, C) the student's
    features: torch.Tensor  # (B, D_S) the student's normed [CLS]
    teacher1_logits: torch.Tensor  # (B, C)
    teacher2_logits: torch.Tensor  # (B, C)


def adapted_teacher(config: DistillationConfig, index: int, module: nn.Module | None) -> AdaptedViT:
    """Teacher ``index``: a pre-trained model's backbone adapted by its mode here, or an adapt-fmnist
    run's AdaptedViT as it was adapted (with ``frozen: true``, a fixed teacher: two-stage KD)."""
    where = f"model.teacher{index + 1}"
    spec = as_submodel((config.teacher1, config.teacher2)[index], where)
    mode = (config.teacher1_mode, config.teacher2_mode)[index]
    built = built_or_preset(module, spec, where)
    if isinstance(built, AdaptedViT):
        if built.config.mode != mode or built.config.num_classes != config.num_classes:
            raise ConfigError(
                f"{where} is an adapted teacher (mode {built.config.mode}, {built.config.num_classes} "
                f"classes); set --{where}_mode {built.config.mode} and --model.num_classes "
                f"{built.config.num_classes} to use it as it is"
            )
        return built
    return AdaptedViT(config.teacher_config(index), pretrained=built, where=where)


@register_model("distill-vit-p4", config=DistillationConfig())
class Distillation(nn.Module):
    """images (B, C, H, W) -> :class:`DistillationOutput`; ``teacher1``, ``teacher2`` (AdaptedViT) and
    ``student`` (ViTClassifier) are the three parts."""

    def __init__(
        self,
        config: DistillationConfig,
        *,
        teacher1: nn.Module | None = None,
        teacher2: nn.Module | None = None,
        student: nn.Module | None = None,
    ) -> None:
        """``teacher1``, ``teacher2``: the pre-trained models the engine built; ``student``: the student."""
        super().__init__()
        self.config = config
        self.teacher1 = adapted_teacher(config, 0, teacher1)
        self.teacher2 = adapted_teacher(config, 1, teacher2)
        sub = as_submodel(config.student, "model.student")
        built = built_or_preset(student, sub, "model.student")
        if not isinstance(built, ViTClassifier):
            raise ConfigError(
                f"model.student is a {type(built).__name__}, not a ViTClassifier (vit-student-p4)"
            )
        self.student = built
        if built.config.num_classes != config.num_classes:
            raise ConfigError(
                f"model.student predicts {built.config.num_classes} classes, "
                f"the teachers {config.num_classes} (model.num_classes)"
            )

    @property
    def teachers(self) -> tuple[AdaptedViT, AdaptedViT]:
        return self.teacher1, self.teacher2

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        return self.student.example_inputs(batch_size)

    def forward(self, images: torch.Tensor) -> DistillationOutput:
        out = self.student(images)
        return DistillationOutput(
            logits=out.logits,
            features=out.features,
            teacher1_logits=self.teacher1(images).logits,
            teacher2_logits=self.teacher2(images).logits,
        )
