"""Aloe on frame tokens, the frame-CNN baseline: the ``aloe-frames`` model.

Aloe's ablations (Ding et al., NeurIPS 2021, arXiv:2012.08508) ask how much the
object-level input matters by giving the same transformer one embedding per frame
instead of one per object. :class:`AloeFrames` holds a
:class:`~attnlab.models.video_qa.frame_encoder.FrameEncoder` and an
:class:`~attnlab.models.video_qa.aloe.Aloe` and trains both end to end on raw video: every
frame becomes one token (K = 1) of ``object_dim`` numbers.

The masked-token auxiliary task masks objects within a frame; with one token per
frame that would hide every frame, so here ``mask_ratio`` is the fraction of *frames*
masked (at least one while it is > 0), and the transformer predicts the masked frame
embeddings (held constant as targets, as for slots).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from attnlab.errors import InputError
from attnlab.models._registry import register_model
from attnlab.models.video_qa.aloe import (
    Aloe,
    AloeConfig,
    AloeModel,
    AloeOutput,
    aloe_fields,
    sample_object_mask,
    video_example_inputs,
)
from attnlab.models.video_qa.frame_encoder import FrameEncoder, FrameEncoderConfig


@dataclass
class AloeFramesConfig(AloeConfig):
    """Aloe's sizes (``object_dim`` is the frame token's size) plus the frame CNN's."""

    object_dim: int = 128
    image_size: int = 64  # S; divisible by 2 ** len(channels)
    channels: tuple[int, ...] = (32, 64, 64)  # one stride-2 conv per entry


@register_model(
    "aloe-frames",
    config=AloeFramesConfig(),
)
class AloeFrames(AloeModel):
    """video (B, T, 3, S, S), question (B, L) [, choices (B, C, Lc)] -> :class:`AloeOutput`."""

    input_kind = "video"

    @property
    def aloe_core(self) -> Aloe:
        return self.aloe

    @property
    def image_size(self) -> int:
        return self.config.image_size

    def __init__(self, config: AloeFramesConfig) -> None:
        super().__init__()
        self.config = c = config
        self.encoder = FrameEncoder(
            FrameEncoderConfig(image_size=c.image_size, channels=tuple(c.channels), out_dim=c.object_dim)
        )
        self.aloe = Aloe(aloe_fields(c))

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        return video_example_inputs(self.aloe, batch_size, self.config.image_size)

    def _frame_mask(
        self, video: torch.Tensor, mask_ratio: float | None, generator: torch.Generator | None
    ) -> torch.Tensor | None:
        """(B, T, 1) bool: the masked frames, or None."""
        ratio = (self.config.mask_ratio if self.training else 0.0) if mask_ratio is None else mask_ratio
        if ratio == 0:
            return None
        B, T = video.shape[:2]
        mask = sample_object_mask(B, 1, T, ratio, generator=generator, device=video.device)  # (B, 1, T)
        return mask.transpose(1, 2)  # (B, T, 1)

    def forward(
        self,
        video: torch.Tensor,
        question: torch.Tensor,
        *,
        choices: torch.Tensor | None = None,
        object_mask: torch.Tensor | None = None,
        mask_ratio: float | None = None,
        generator: torch.Generator | None = None,
    ) -> AloeOutput:
        """``object_mask`` (B, T, 1) bool masks given frames; else ``mask_ratio`` of the frames
        (default: the config's in training, none in eval) are drawn from ``generator``."""
        if object_mask is not None and object_mask.shape != (*video.shape[:2], 1):
            raise InputError(
                f"object_mask must be (B, T, 1) = {(*video.shape[:2], 1)} for frame tokens, "
                f"got {tuple(object_mask.shape)}"
            )
        tokens = self.encoder(video)  # (B, T, 1, D)
        if object_mask is None:
            object_mask = self._frame_mask(video, mask_ratio, generator)
        # mask_ratio 0: with K = 1, Aloe's own per-frame sampling would mask every token
        return self.aloe(tokens, question, choices=choices, object_mask=object_mask, mask_ratio=0.0)
