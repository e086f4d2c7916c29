"""DINO: self-distillation with no labels (Caron et al., "Emerging Properties in Self-Supervised
Vision Transformers", ICCV 2021, arXiv:2104.14294).

Reference: facebookresearch/dino ``main_dino.py`` (how the student and teacher are built) and
``utils.py`` (``MultiCropWrapper``), read, not copied.

A student and a teacher of the same architecture, each the shared
:class:`~attnlab.models.vit.image_vit.ImageViT` (its normed [CLS] token is the feature) followed by
a :class:`~attnlab.models.vit.dino_head.DINOHead`. The student sees every crop (2 global + N
local), the teacher only the 2 global ones. The teacher starts as a copy of the student, gets no
gradient and is moved only by the EMA step of the training task
(:func:`attnlab.objectives.dino_schedules.teacher_update`); the loss is
:class:`attnlab.objectives.dino.DINOLoss`.

Multi-crop forward (the official ``MultiCropWrapper``): consecutive crops of the same size are
concatenated and go through the backbone in one call (2 global crops, then N local ones: two
calls, not 2 + N); the [CLS] features of every crop then go through the head in one call. Outputs
are crop-major (all images' crop 0, then crop 1, ...), as the loss expects.

As the official code: the student's backbone has stochastic depth (``drop_path_rate``, 0.1 for
ViT-S), the teacher's none; the teacher keeps the student's initial weights; the teacher is what
DINO evaluates and releases (:meth:`DINO.backbone`).

Deviations: none in the numbers. The official wraps the teacher in its own DDP module; here
student and teacher are one module (the teacher's parameters have ``requires_grad=False``, as
the official sets them, so DDP ignores them).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.models._registry import register_model
from attnlab.models.vit.dino_head import DINOHead, DINOHeadConfig
from attnlab.models.vit.image_vit import FMNIST_P4, ImageViT, ImageViTConfig


@dataclass
class DINOConfig:
    """Backbone and head, flat so that ``--model.KEY`` overrides reach every field."""

    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    dim: int = 384
    depth: int = 12
    num_heads: int = 6
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.1  # the student's; the teacher has none
    out_dim: int = 65536  # K, the head's prototypes
    head_layers: int = 3
    head_hidden_dim: int = 2048
    bottleneck_dim: int = 256
    use_bn_in_head: bool = False
    norm_last_layer: bool = True

    def vit(self) -> ImageViTConfig:
        """The student's backbone (DINO: learned positions, [CLS])."""
        return ImageViTConfig(
            img_size=self.img_size,
            patch_size=self.patch_size,
            in_chans=self.in_chans,
            dim=self.dim,
            depth=self.depth,
            num_heads=self.num_heads,
            mlp_ratio=self.mlp_ratio,
            qkv_bias=True,
            cls_token=True,
            pos_embed="learned",
            drop_path_rate=self.drop_path_rate,
        )

    def head(self) -> DINOHeadConfig:
        return DINOHeadConfig(
            in_dim=self.dim,
            out_dim=self.out_dim,
            nlayers=self.head_layers,
            hidden_dim=self.head_hidden_dim,
            bottleneck_dim=self.bottleneck_dim,
            use_bn=self.use_bn_in_head,
            norm_last_layer=self.norm_last_layer,
        )

    def check(self) -> None:
        self.vit().check()
        self.head().check()


# 28 x 28 grey images: the backbone MAE's mae-vit-p4 shares; a head sized to 10 classes' worth of data
DINO_VIT_P4 = DINOConfig(
    img_size=FMNIST_P4.img_size, patch_size=FMNIST_P4.patch_size, in_chans=FMNIST_P4.in_chans,
    dim=FMNIST_P4.dim, depth=FMNIST_P4.depth, num_heads=FMNIST_P4.num_heads, mlp_ratio=FMNIST_P4.mlp_ratio,
    drop_path_rate=0.1, out_dim=1024, head_hidden_dim=512, bottleneck_dim=128,
)  # fmt: skip


@dataclass
class DINOOutput:
    """Head outputs (logits before the temperatures), crop-major."""

    student: torch.Tensor  # (ncrops * B, K): every crop
    teacher: torch.Tensor  # (2 * B, K): the 2 global crops, no gradient


class ViTWithHead(nn.Module):
    """Backbone + head over a list of crops, one backbone call per run of same-sized crops
    (the official ``MultiCropWrapper``)."""

    def __init__(self, backbone: ImageViT, head: DINOHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, crops: list[torch.Tensor]) -> torch.Tensor:
        features = [self.backbone(torch.cat(group))[:, 0] for group in same_size_runs(crops)]  # [CLS] (n, D)
        return self.head(torch.cat(features))  # (sum n, K), crop-major


def same_size_runs(crops: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Consecutive crops of equal (H, W) grouped: [g1, g2, l1, ..., lN] -> [[g1, g2], [l1, ..., lN]]."""
    runs: list[list[torch.Tensor]] = []
    for crop in crops:
        if runs and runs[-1][-1].shape[-2:] == crop.shape[-2:]:
            runs[-1].append(crop)
        else:
            runs.append([crop])
    return runs


@register_model("dino-vit-p4", config=DINO_VIT_P4)
class DINO(nn.Module):
    """``forward(crops)`` with crops = [global 1, global 2, local 1 .. N], each (B, C, h, w) ->
    :class:`DINOOutput`."""

    def __init__(self, config: DINOConfig) -> None:
        super().__init__()
        config.check()
        self.config = config
        self.student = ViTWithHead(ImageViT(config.vit()), DINOHead(config.head()))
        # the teacher: the same weights to start with, no stochastic depth, never trained by gradients
        teacher_vit = ImageViT(dataclasses.replace(config.vit(), drop_path_rate=0.0))
        self.teacher = ViTWithHead(teacher_vit, DINOHead(config.head()))
        self.teacher.load_state_dict(self.student.state_dict())
        self.teacher.requires_grad_(False)

    def backbone(self) -> ImageViT:
        """The teacher's backbone: what DINO evaluates (k-NN, linear) and releases."""
        return self.teacher.backbone

    def example_inputs(self, batch_size: int = 2) -> dict[str, list[torch.Tensor]]:
        """Two global crops of the configured size and two local ones of about 3/7 of it (registry tests)."""
        c = self.config
        local = max(c.patch_size, (3 * c.img_size // 7) // c.patch_size * c.patch_size)
        sizes = [c.img_size, c.img_size, local, local]
        return {"crops": [torch.randn(batch_size, c.in_chans, s, s) for s in sizes]}

    def forward(self, crops: list[torch.Tensor]) -> DINOOutput:
        if not isinstance(crops, (list, tuple)) or len(crops) < 2:
            raise InputError(
                f"DINO expects a list of >= 2 crops (2 global first), got {type(crops).__name__}"
            )
        batch = crops[0].shape[0]
        if any(crop.dim() != 4 or crop.shape[0] != batch for crop in crops):
            raise InputError(
                f"every crop must be (B={batch}, C, h, w), got {[tuple(crop.shape) for crop in crops]}"
            )
        if crops[1].shape != crops[0].shape:
            raise InputError(
                "the 2 global crops must have one shape, "
                f"got {tuple(crops[0].shape)} and {tuple(crops[1].shape)}"
            )
        student = self.student(list(crops))  # (ncrops * B, K)
        with torch.no_grad():
            teacher = self.teacher(list(crops[:2]))  # (2B, K)
        return DINOOutput(student=student, teacher=teacher)
