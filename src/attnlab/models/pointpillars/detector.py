"""PointPillars (Lang et al., "PointPillars: Fast Encoders for Object Detection from Point
Clouds", CVPR 2019, arXiv:1812.05784) in pure PyTorch, no compiled extensions.

Points -> pillars (:mod:`.pillars`) -> 9-D decoration -> PointNet and scatter to the BEV
pseudo-image (:mod:`.pillar_net`) -> three-stage backbone and deconvolution neck
(:mod:`.backbone`) -> SSD head over per-class anchors (:mod:`.head`, :mod:`.anchors`) -> in
eval mode, decoding (:mod:`.box_coder`) and per-class rotated BEV NMS (:mod:`.nms`).

Reference implementation: zhulf0804/PointPillars (``model/pointpillars.py``), read, not copied.
Post-processing follows it: the ``nms_pre`` = 100 anchors of highest class score per scene,
then per class a score threshold of 0.1 and rotated NMS at IoU 0.01, then the ``max_num`` = 50
best boxes. Deviations: anchors at the paper's z centres (see :mod:`.anchors`); every
kept box remembers its anchor (``Detections3D.anchor_index``) and stays a differentiable
function of the head maps, so of the pseudo-image and the points (for explanations); the
post-processing runs batched in torch on the model's device.

Presets: ``pointpillars`` (the paper's KITTI settings: 0.16 m pillars over 69.12 x 79.36 m,
64 pillar features, blocks (2, 3, 64), (2, 5, 128), (2, 5, 256), 3 x 128 upsampled) and
``pointpillars-small`` (a CPU-sized version for the synthetic scenes: 0.2 m pillars over
38.4 x 38.4 m, 32 features, blocks (2, 1, 32), (2, 2, 64), (2, 2, 128), 3 x 64 upsampled,
batch-norm momentum 0.1 instead
of 0.01 so that the running statistics settle within a few hundred steps).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.models._registry import register_model
from attnlab.models.outputs import Detections3D, PointPillarsOutput
from attnlab.models.pointpillars.anchors import AnchorConfig, make_anchors
from attnlab.models.pointpillars.backbone import Backbone
from attnlab.models.pointpillars.box_coder import apply_direction, decode
from attnlab.models.pointpillars.head import DetectionHead
from attnlab.models.pointpillars.nms import rotated_nms
from attnlab.models.pointpillars.pillar_net import PillarFeatureNet, scatter_to_bev
from attnlab.models.pointpillars.pillars import PillarConfig, decorate, pillarize


@dataclass(frozen=True)
class PointPillarsConfig:
    """Flat, so that a recipe overrides any field (``--model.max_pillars 20000``)."""

    # pillars (:class:`.pillars.PillarConfig`)
    voxel_size: tuple[float, float, float] = (0.16, 0.16, 4.0)
    point_range: tuple[float, float, float, float, float, float] = (0.0, -39.68, -3.0, 69.12, 39.68, 1.0)
    max_points_per_pillar: int = 32
    max_pillars: int = 16000
    # networks
    pillar_dim: int = 64
    channels: tuple[int, ...] = (64, 128, 256)
    layer_nums: tuple[int, ...] = (3, 5, 5)
    strides: tuple[int, ...] = (2, 2, 2)
    up_strides: tuple[int, ...] = (1, 2, 4)
    up_channels: tuple[int, ...] = (128, 128, 128)
    bn_momentum: float = 0.01  # the reference's; running statistics need thousands of steps to settle
    # anchors (:class:`.anchors.AnchorConfig`)
    class_names: tuple[str, ...] = ("Car", "Pedestrian", "Cyclist")
    anchor_sizes: tuple[tuple[float, float, float], ...] = (
        (1.6, 3.9, 1.5),
        (0.6, 0.8, 1.73),
        (0.6, 1.76, 1.73),
    )
    anchor_z_centres: tuple[float, ...] = (-1.0, -0.6, -0.6)
    anchor_rotations: tuple[float, ...] = (0.0, 1.5707963267948966)
    # post-processing
    nms_pre: int = 100  # candidates per scene, by their best class score
    score_threshold: float = 0.1
    iou_threshold: float = 0.01  # rotated BEV IoU
    max_num: int = 50  # boxes kept per scene

    @property
    def pillars(self) -> PillarConfig:
        return PillarConfig(self.voxel_size, self.point_range, self.max_points_per_pillar, self.max_pillars)

    @property
    def anchors(self) -> AnchorConfig:
        return AnchorConfig(self.class_names, self.anchor_sizes, self.anchor_z_centres, self.anchor_rotations)

    @property
    def feature_hw(self) -> tuple[int, int]:
        ny, nx = self.pillars.grid_size
        return ny // self.strides[0], nx // self.strides[0]


SMALL = PointPillarsConfig(
    voxel_size=(0.2, 0.2, 4.0),
    point_range=(0.0, -19.2, -3.0, 38.4, 19.2, 1.0),
    max_pillars=12000,
    pillar_dim=32,
    channels=(32, 64, 128),
    layer_nums=(1, 2, 2),
    up_channels=(64, 64, 64),
    bn_momentum=0.1,  # a CPU run of a few hundred steps: BN statistics must follow within it
)


@register_model("pointpillars", config=PointPillarsConfig())
@register_model("pointpillars-small", config=SMALL)
class PointPillars(nn.Module):
    """``forward(clouds)``: a list of (N_i, 4) LiDAR clouds -> :class:`PointPillarsOutput`."""

    anchors: torch.Tensor  # buffers, (A, 7) and (A,)
    anchor_class: torch.Tensor

    def __init__(self, config: PointPillarsConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        if (
            len({len(c.channels), len(c.layer_nums), len(c.strides), len(c.up_strides), len(c.up_channels)})
            != 1
        ):
            raise InputError(
                "PointPillars needs one value per backbone stage in channels, layer_nums, strides, up_*"
            )
        self.pillar_net = PillarFeatureNet(9, c.pillar_dim, c.bn_momentum)
        self.backbone = Backbone(
            c.pillar_dim, c.channels, c.layer_nums, c.strides, c.up_strides, c.up_channels, c.bn_momentum
        )
        self.head = DetectionHead(sum(c.up_channels), c.anchors.per_location, len(c.anchors.class_names))
        anchors, anchor_class = make_anchors(c.anchors, c.feature_hw, c.pillars.point_range)
        self.register_buffer("anchors", anchors, persistent=False)  # (A, 7)
        self.register_buffer("anchor_class", anchor_class, persistent=False)  # (A,)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.config.anchors.class_names

    def example_inputs(self, batch_size: int = 2) -> dict[str, list[torch.Tensor]]:
        """Random clouds in the point range (used by the registry-wide tests)."""
        gen = torch.Generator().manual_seed(0)
        lo = torch.tensor(self.config.pillars.point_range[:3])
        hi = torch.tensor(self.config.pillars.point_range[3:])
        clouds = [
            torch.cat(
                [lo + (hi - lo) * torch.rand(3000, 3, generator=gen), torch.rand(3000, 1, generator=gen)], 1
            )
            for _ in range(batch_size)
        ]
        return {"clouds": clouds}

    def pseudo_image(self, clouds: list[torch.Tensor]) -> torch.Tensor:
        """(B, pillar_dim, ny, nx) BEV pseudo-image of a batch of (N_i, 4) clouds."""
        for i, cloud in enumerate(clouds):
            if cloud.dim() != 2 or cloud.shape[1] != 4:
                raise InputError(
                    f"cloud {i} must be (N, 4) points x y z reflectance, got {tuple(cloud.shape)}"
                )
        cfg = self.config.pillars
        pillars = pillarize(clouds, cfg)
        features = self.pillar_net(decorate(pillars, cfg))  # (P, C)
        return scatter_to_bev(features, pillars, cfg.grid_size)

    def forward(self, clouds: list[torch.Tensor]) -> PointPillarsOutput:
        image = self.pseudo_image(clouds)
        return self.forward_pseudo_image(image)

    def forward_pseudo_image(self, image: torch.Tensor) -> PointPillarsOutput:
        """The network from the (B, C, ny, nx) pseudo-image on (what explanations differentiate)."""
        cls_logits, box_deltas, dir_logits = self.head(self.backbone(image))
        detections = None if self.training else self.detect(cls_logits, box_deltas, dir_logits)
        return PointPillarsOutput(
            cls_logits=cls_logits,
            box_deltas=box_deltas,
            dir_logits=dir_logits,
            anchors=self.anchors,
            pseudo_image=image,
            detections=detections,
        )

    def detect(
        self, cls_logits: torch.Tensor, box_deltas: torch.Tensor, dir_logits: torch.Tensor
    ) -> list[Detections3D]:
        """Decode and filter each scene's boxes (see the module docstring)."""
        return [self._detect_one(c, b, d) for c, b, d in zip(cls_logits, box_deltas, dir_logits, strict=True)]

    @staticmethod
    def decode_boxes(deltas: torch.Tensor, dir_logits: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """(..., 7) boxes x y z w l h ry from residuals (..., 7) on anchors (..., 7), the heading
        turned into the direction bin of the (..., 2) direction logits: the boxes :meth:`detect` keeps."""
        boxes = decode(deltas, anchors)
        heading = apply_direction(boxes[..., 6], dir_logits.argmax(-1))
        return torch.cat([boxes[..., :6], heading[..., None]], -1)

    def _detect_one(
        self, cls_logits: torch.Tensor, deltas: torch.Tensor, dir_logits: torch.Tensor
    ) -> Detections3D:
        post = self.config
        scores = torch.sigmoid(cls_logits)  # (A, K)
        top = scores.detach().max(1).values.topk(min(post.nms_pre, len(scores))).indices  # (n,)
        boxes = self.decode_boxes(deltas[top], dir_logits[top], self.anchors[top])
        keep_rows, keep_labels = [], []
        for k in range(scores.shape[1]):
            rows = torch.nonzero(scores[top, k].detach() > post.score_threshold).squeeze(1)
            bev = boxes[rows][:, [0, 1, 3, 4, 6]]
            kept = rows[rotated_nms(bev, scores[top[rows], k], post.iou_threshold)]
            keep_rows.append(kept)
            keep_labels.append(torch.full_like(kept, k))
        rows, labels = torch.cat(keep_rows), torch.cat(keep_labels)
        kept_scores = scores[top[rows], labels]
        best = torch.argsort(kept_scores.detach(), descending=True, stable=True)[: post.max_num]
        rows, labels = rows[best], labels[best]
        return Detections3D(
            boxes=boxes[rows], scores=kept_scores[best], labels=labels, anchor_index=top[rows]
        )
