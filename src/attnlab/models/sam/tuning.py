"""Seed 004's fine-tuning set-ups on a trained SAM: the thesis's baseline (mask decoder only), with
SAM's learned prompt embeddings also trained ("+ learned embedding"), and its prompt tuning (the
token of :mod:`~attnlab.models.sam.prompt_token` and the mask decoder; learned embeddings frozen).
The image encoder is frozen in all three, as in the thesis.

``base`` is the trained SAM (a :class:`~attnlab.models._submodel.SubModel`: a run folder, or a
preset); its weights are copied into a SAM of the same architecture with the token added (the
token keeps its fresh initialisation). Parameters are frozen by ``requires_grad``; the state dict is
the inner SAM's under ``sam.``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.models._registry import register_model
from attnlab.models._submodel import SubModel, as_submodel, built_or_preset
from attnlab.models.sam.sam import Sam, SamOutput
from attnlab.state_dicts import check_state_dict


@dataclass
class SamTuningConfig:
    base: SubModel | str = field(default_factory=lambda: SubModel(name="sam-cells"))
    prompt_token_dim: int | None = 128  # None: no token (the baseline and "+ learned embedding")
    train_learned_embedding: bool = False  # True: SAM's point/box embeddings train too

    def __post_init__(self) -> None:  # a recipe's mapping or string, as the engine's SubModel
        self.base = as_submodel(self.base, "model.base")


@register_model("sam-prompt-tuning-cells", config=SamTuningConfig())
@register_model("sam-decoder-tuning-cells", config=SamTuningConfig(prompt_token_dim=None))
class SamTuning(nn.Module):
    """A trained SAM with only the mask decoder (and the token, or the learned embeddings) trainable."""

    def __init__(self, config: SamTuningConfig, *, base: nn.Module | None = None) -> None:
        """``base``: the module the engine built for ``config.base``."""
        super().__init__()
        self.config = config
        source = built_or_preset(
            base, as_submodel(config.base, "model.base"), "model.base"
        )  # checked again: a config built by hand
        if not isinstance(source, Sam):
            raise ConfigError(f"model.base must be a SAM (sam-*), got {type(source).__name__}")
        if source.config.prompt_token_dim is not None:
            raise ConfigError("model.base already has a prompt token: give a plain SAM")
        self.sam = Sam(
            dataclasses.replace(
                source.config,
                prompt_token_dim=config.prompt_token_dim,
                freeze_learned_embedding=not config.train_learned_embedding,
                freeze_image_encoder=True,
            )
        )
        state = source.state_dict()
        own = {k: v for k, v in self.sam.state_dict().items() if not k.startswith("prompt_token.")}
        check_state_dict(own, state, "model.base")
        self.sam.load_state_dict(state, strict=False)  # every key but the token's, checked above
        self.sam.requires_grad_(False)
        self.sam.mask_decoder.requires_grad_(True)
        if self.sam.prompt_token is not None:
            self.sam.prompt_token.requires_grad_(True)
        if config.train_learned_embedding:
            for module in (
                *self.sam.prompt_encoder.point_embeddings,
                self.sam.prompt_encoder.not_a_point_embed,
            ):
                module.requires_grad_(True)

    def forward(
        self,
        images: torch.Tensor,
        *,
        boxes: torch.Tensor | None = None,
        points: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
        mask_valid: torch.Tensor | None = None,
        multimask_output: bool = False,
    ) -> SamOutput:
        """As :meth:`Sam.forward`."""
        return self.sam(
            images,
            boxes=boxes,
            points=points,
            point_labels=point_labels,
            mask_inputs=mask_inputs,
            mask_valid=mask_valid,
            multimask_output=multimask_output,
        )

    def example_inputs(self, batch_size: int = 2) -> dict[str, object]:
        return self.sam.example_inputs(batch_size)
