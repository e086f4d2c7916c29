"""ST-ABN: Spatio-Temporal Attention Branch Network (seed 001; built on ABN, Fukui et al.
CVPR 2019, arXiv:1812.10025, official ABN code machine-perception-robotics-group/
attention_branch_network; no official ST-ABN code is public).

A 3D ResNet split after stage 3:
- feature extractor: stem + stages 1-3 -> f (B, C3, T, H, W);
- attention branch: a copy of stage 4 with stride 1 on f, then the ST head
  (:mod:`attnlab.layers.st_branch`) -> branch logits, spatial M_s (B, 1, T, H, W) and
  temporal M_t (B, T);
- perception branch: conv(cat((1 + M_s) * f, M_t * f)) -> stage 4 -> pool -> linear.
Loss ``L_att + L_per`` (:func:`attnlab.objectives.abn.abn_loss` style, in the task).
``invert_spatial`` / ``invert_temporal`` replace M by 1 - M in the perception branch:
the seed's attention-inversion test.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.layers.residual3d import block_for_depth, make_stage3d, resnet3d_trunk
from attnlab.layers.st_branch import STAttentionBranchHead, STAttentionFusion
from attnlab.models._registry import register_model


@dataclass
class STABNConfig:
    num_classes: int = 174
    depth: int = 50
    width: int = 64
    in_chans: int = 3
    num_frames: int = 32  # M_t has one weight per frame; the temporal FC layers fix it
    stem_pool: bool = True
    temporal_channels: int = 8
    temporal_hidden: int = 64
    dropout: float = 0.0


@dataclass
class STABNOutput:
    logits: torch.Tensor  # (B, K) perception branch: the prediction
    att_logits: torch.Tensor  # (B, K) attention branch
    spatial: torch.Tensor  # (B, T, H, W) M_s at stage-3 resolution, before any inversion
    temporal: torch.Tensor  # (B, T) M_t, before any inversion


@register_model("st-abn-r3d50", config=STABNConfig())
@register_model(
    "st-abn-r3d-tiny",
    config=STABNConfig(num_classes=9, depth=10, width=16, num_frames=16, stem_pool=False, temporal_hidden=32),
)
class STABN(nn.Module):
    """Video (B, C, T, H, W) -> :class:`STABNOutput`."""

    def __init__(self, config: STABNConfig) -> None:
        super().__init__()
        self.config = c = config
        self.stem, stages, widths = resnet3d_trunk(
            c.depth, width=c.width, in_channels=c.in_chans, stem_pool=c.stem_pool
        )
        self.stages = stages[:3]  # the feature extractor
        self.perception_stage = stages[3]
        block, count = block_for_depth(c.depth), len(stages[3])
        self.branch_stage = make_stage3d(block, widths[2], c.width * 8, count, stride=(1, 1, 1))
        self.branch = STAttentionBranchHead(
            widths[3],
            c.num_classes,
            c.num_frames,
            temporal_channels=c.temporal_channels,
            temporal_hidden=c.temporal_hidden,
        )
        self.fusion = STAttentionFusion(widths[2])
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Linear(widths[3], c.num_classes)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        return {"video": torch.rand(batch_size, self.config.in_chans, self.config.num_frames, 32, 32)}

    def _check(self, video: torch.Tensor) -> None:
        c = self.config
        if video.dim() != 5 or video.shape[1] != c.in_chans or not video.is_floating_point():
            raise InputError(
                f"video must be floating (B, {c.in_chans}, T, H, W), got {video.dtype} {tuple(video.shape)}"
            )
        if video.shape[2] != c.num_frames:
            raise InputError(
                f"ST-ABN was built for {c.num_frames} frames, got {video.shape[2]} (set model.num_frames)"
            )

    def forward(
        self, video: torch.Tensor, *, invert_spatial: bool = False, invert_temporal: bool = False
    ) -> STABNOutput:
        self._check(video)
        f = self.stem(video)
        for stage in self.stages:
            f = stage(f)  # (B, C3, T, H, W)
        branch = self.branch(self.branch_stage(f))
        spatial = 1 - branch.spatial if invert_spatial else branch.spatial
        temporal = 1 - branch.temporal if invert_temporal else branch.temporal
        h = self.perception_stage(self.fusion(f, spatial, temporal))  # (B, C4, T, H/2, W/2)
        logits = self.head(self.dropout(h.mean(dim=(2, 3, 4))))
        return STABNOutput(
            logits=logits, att_logits=branch.logits, spatial=branch.spatial[:, 0], temporal=branch.temporal
        )
