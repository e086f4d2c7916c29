"""ViT classifiers of the distillation thesis (seed 004): the student, and a pre-trained teacher
adapted to the labels (linear probe, Partial-1, full fine-tuning).

:class:`ViTClassifier` is the shared :class:`ImageViT` with a linear head on the normed [CLS]
token (Dosovitskiy et al., arXiv:2010.11929; DeiT's ``VisionTransformer`` with
``global_pool='token'``). The student preset ``vit-student-p4`` scales ViT-Ti (dim 192, depth 12,
3 heads, DeiT-Ti in the thesis) down to Fashion-MNIST: 28 px grey, patch 4 (7 x 7 tokens +
[CLS]), dim 96, depth 4, 3 heads, learned positions.

:class:`AdaptedViT` takes the ``backbone()`` of a pre-trained model (DINO's teacher backbone,
MAE's encoder; a :class:`~attnlab.models._submodel.SubModel` field ``pretrained`` the engine
builds from a run folder or a preset) and puts a linear head on its normed [CLS]. ``mode``:

* ``linear``: the backbone is frozen; the head reads the [CLS] through a BatchNorm without
  affine parameters (MAE's ``main_linprobe.py``: features of MAE encoders have very different
  scales per channel; at eval the BatchNorm is a fixed affine map the head absorbs, so it does
  not change what a linear probe can express). DINO's ``eval_linear.py`` has no BatchNorm and
  concatenates the [CLS] of the last 4 blocks for ViT-S; we read the last [CLS] alone for both,
  as the thesis's Table 1 compares one probe across teachers. ``probe_norm=False`` drops it.
* ``partial-1`` (the thesis, after He et al.'s "partial fine-tuning", MAE Fig. 9): the last
  transformer block, the final norm and the head train; everything before is frozen.
* ``finetune``: every parameter trains. (MAE fine-tunes on the global average of the patch
  tokens; we keep [CLS] so that the three modes differ only in what trains.)

The frozen part stays in eval mode (``train()`` leaves it there) and runs under
``torch.no_grad`` unless the images require gradients (input-gradient explanations), so no
activation of the frozen blocks is kept for a backward pass that cannot use it.

Heads: trunc-normal(0.01) weights, zero bias, as DINO's ``LinearClassifier`` (normal 0.01) and MAE's
probe head (trunc-normal 0.01; its fine-tuning head starts at 2e-5).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.models._registry import register_model
from attnlab.models._submodel import SubModel, as_submodel, built_or_preset
from attnlab.models.outputs import ClassifierOutput
from attnlab.models.vit.image_vit import ImageViT, ImageViTConfig

AdaptMode = Literal["linear", "partial-1", "finetune"]
ADAPT_MODES = ("linear", "partial-1", "finetune")


@runtime_checkable
class HasBackbone(Protocol):
    """A pre-trained model that hands over the ViT to adapt (DINO: its teacher backbone; MAE: its encoder)."""

    def backbone(self) -> ImageViT: ...


def linear_head(dim: int, num_classes: int) -> nn.Linear:
    head = nn.Linear(dim, num_classes)
    nn.init.trunc_normal_(head.weight, std=0.01)
    nn.init.zeros_(head.bias)
    return head


def trainable_parameters(module: nn.Module) -> int:
    """How many numbers the optimiser updates (parameters with ``requires_grad``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


# ---------------------------------------------------------------- the student


@dataclass
class ViTClassifierConfig(ImageViTConfig):
    """The encoder's architecture (:class:`ImageViTConfig`, [CLS] required) and the classes."""

    num_classes: int = 10

    def check(self) -> None:
        super().check()
        if not self.cls_token:
            raise ConfigError("ViTClassifier reads the [CLS] token: set cls_token=True")
        if self.num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1, got {self.num_classes}")


VIT_STUDENT_P4 = ViTClassifierConfig(
    img_size=28, patch_size=4, in_chans=1, dim=96, depth=4, num_heads=3, num_classes=10
)


@register_model("vit-student-p4", config=VIT_STUDENT_P4)
class ViTClassifier(nn.Module):
    """images (B, C, H, W) -> :class:`ClassifierOutput` (logits from the normed [CLS])."""

    def __init__(self, config: ViTClassifierConfig) -> None:
        super().__init__()
        config.check()
        self.config = config
        self.vit = ImageViT(config)
        self.head = linear_head(config.dim, config.num_classes)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        c = self.config
        return {"images": torch.randn(batch_size, c.in_chans, c.img_size, c.img_size)}

    def forward(self, images: torch.Tensor) -> ClassifierOutput:
        cls = self.vit(images)[:, 0]  # (B, D): the normed [CLS]
        return ClassifierOutput(logits=self.head(cls), features=cls)


# ---------------------------------------------------------------- the adapted teacher


@dataclass
class AdaptedViTConfig:
    """``pretrained``: the model whose ``backbone()`` is adapted (a dino-fmnist / mae-fmnist run as
    ``init_from``, or a preset ``name``); ``mode``: what trains (see the module docstring)."""

    pretrained: SubModel | str = field(default_factory=lambda: SubModel(name="mae-vit-tiny-p4"))
    mode: AdaptMode = "partial-1"
    num_classes: int = 10
    probe_norm: bool = True  # linear mode: BatchNorm without affine before the head (MAE's probe)

    def __post_init__(self) -> None:
        self.pretrained = as_submodel(self.pretrained, "model.pretrained")
        if self.mode not in ADAPT_MODES:
            raise ConfigError(f"mode must be one of {', '.join(ADAPT_MODES)}, got {self.mode!r}")
        if self.num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1, got {self.num_classes}")


def backbone_of(module: nn.Module, where: str) -> ImageViT:
    """``module.backbone()``, or a one-line ConfigError naming what ``where`` holds instead."""
    # on the class: an AdaptedViT's ``backbone`` is a submodule, not the method of the contract
    if not isinstance(module, HasBackbone) or not callable(getattr(type(module), "backbone", None)):
        raise ConfigError(
            f"{where} is a {type(module).__name__}, which has no backbone() to adapt: "
            "give a run (or preset) of a pre-trained ViT such as dino-fmnist or mae-fmnist"
        )
    vit = module.backbone()
    if not isinstance(vit, ImageViT) or vit.cls_token is None:
        raise ConfigError(f"{where}: its backbone() must be an ImageViT with a [CLS] token")
    return vit


@register_model("adapted-vit-p4", config=AdaptedViTConfig())
class AdaptedViT(nn.Module):
    """images (B, C, H, W) -> :class:`ClassifierOutput` from a pre-trained backbone adapted by ``mode``."""

    def __init__(
        self,
        config: AdaptedViTConfig,
        *,
        pretrained: nn.Module | None = None,
        where: str = "model.pretrained",
    ) -> None:
        """``pretrained``: the module the engine built for ``config.pretrained`` (or None: a fresh
        preset); ``where`` names the config field in errors (a Distillation's ``model.teacher1``)."""
        super().__init__()
        self.config = config
        spec = as_submodel(config.pretrained, where)
        if spec.frozen:
            raise ConfigError(
                f"{where}.frozen would freeze the whole backbone; use mode 'linear' for a frozen backbone"
            )
        self.backbone = backbone_of(built_or_preset(pretrained, spec, where), where)
        self.backbone.requires_grad_(True)  # a module passed in may come frozen; mode decides below
        dim = self.backbone.config.dim
        use_norm = config.mode == "linear" and config.probe_norm
        self.probe_norm = nn.BatchNorm1d(dim, affine=False, eps=1e-6) if use_norm else nn.Identity()
        self.head = linear_head(dim, config.num_classes)
        for p in self.frozen_parameters():
            p.requires_grad_(False)
        self.train(self.training)

    def frozen_modules(self) -> list[nn.Module]:
        """The frozen part, kept in eval mode: the whole backbone (linear), its patch embedding and
        all blocks but the last (partial-1), nothing (finetune)."""
        vit, mode = self.backbone, self.config.mode
        if mode == "linear":
            return [vit]
        if mode == "partial-1":
            return [vit.patch_embed, *vit.blocks[:-1]]
        return []

    def frozen_parameters(self) -> list[nn.Parameter]:
        """What never trains: the frozen modules' parameters, and in partial-1 also the backbone's
        own [CLS] token and learned positions (they feed only the frozen blocks)."""
        params = [p for m in self.frozen_modules() for p in m.parameters()]
        if self.config.mode == "partial-1":
            params += list(self.backbone.parameters(recurse=False))
        return params

    def train(self, mode: bool = True) -> AdaptedViT:
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self

    def trainable_parameters(self) -> int:
        return trainable_parameters(self)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        c = self.backbone.config
        return {"images": torch.randn(batch_size, c.in_chans, c.img_size, c.img_size)}

    def _frozen_context(self, images: torch.Tensor) -> contextlib.AbstractContextManager[None]:
        # input-gradient explanations need the graph through the frozen part; training does not
        return contextlib.nullcontext() if images.requires_grad else torch.no_grad()

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1 + N, D) the backbone's normed tokens, the frozen part computed without a graph."""
        vit, mode = self.backbone, self.config.mode
        if mode == "finetune":
            return vit(images)
        with self._frozen_context(images):
            if mode == "linear":
                return vit(images)
            x = vit.prepare_tokens(images)  # (B, 1 + N, D)
            for block in vit.blocks[:-1]:
                x = block(x)
        return vit.norm(vit.blocks[-1](x))

    def forward(self, images: torch.Tensor) -> ClassifierOutput:
        cls = self.tokens(images)[:, 0]  # (B, D)
        return ClassifierOutput(logits=self.head(self.probe_norm(cls)), features=cls)
