"""Explaining each box of a PointPillars detector point by point: ODAM, Guided Grad-CAM, Guided ODAM.

Seed 004 (the point-cloud thesis, sec. 3) and ODAM (Zhao & Chan, ICLR 2023, arXiv:2304.06354).
For one detected box of class ``c``, ``s`` its class score as the detector reports it (the sigmoid
score of :class:`attnlab.models.outputs.Detections3D`) and ``b`` its 7 decoded parameters
(x y z w l h ry), on a scene of N points:

* ``odam``: ODAM at the pillar pseudo-image ``A`` (1, C, ny, nx), the Pillar Feature Net's output,
  as the thesis (sec. 3.1): ``H_y = ReLU(sum_k dy/dA_k * A_k)`` for ``y = s`` and for each of the 7
  box parameters (the thesis's 4 of a 2-D box become 7), each map min-max scaled to [0, 1] over the
  grid, merged by their elementwise maximum (:func:`attnlab.explain.odam.odam`, ``normalize=True``).
  Each point takes the value of its pillar's cell (:func:`point_values`), so all points of a pillar
  share it; points outside the grid get 0. ``odam-class``: the class-score map alone (same pass).
* guided backpropagation: the gradient of ``s`` with respect to each input point's ``x y z r``, every
  ReLU guided (:func:`attnlab.explain.odam.guided_gradients`; the decoration and the max over each
  pillar's points are differentiated as they are). ``g_input`` per point is the L2 norm of its 4
  gradients, divided by the largest over the scene: [0, 1]. The thesis adds "the gradient" without
  saying how a point's 4 values become one; the norm keeps every direction of influence.
* ``guided-odam``: ``(A_odam + g_input)^2`` (thesis eq. 1), both terms in [0, 1] as above, so
  neither swamps the other (the sum is not scale-free).
* ``guided-gradcam``: Grad-CAM per box at the same layer (the gradient of ``s`` averaged over the
  grid as channel weights; ``odam(..., weights="gradcam")``), scaled to [0, 1], on the points,
  times ``g_input`` (Selvaraju et al.'s product).
* floors, measured the same way: ``random`` (each point a uniform random value) and ``uniform``
  (1 on every point, so its share inside the box is the fraction of the scene's points there).

mAPB (thesis eq. 2): for each map, the attention on the points inside the predicted box over the
attention on all the scene's points (:func:`box_share`), averaged over the maps of each predicted
class (:func:`mapb`). A map with no attention at all counts as 0.

Deletion (:func:`deletion_scores`, the issue's faithfulness check): for each box and map, the
``k`` most attended points of the scene are removed (``k`` = the points inside the box; ties
broken by a fixed random order) and the detector runs again; the box's score (its anchor and
class) over the score before. Lower is more faithful. Beside the maps: ``random`` (k random
points) and ``box`` (exactly the points inside the box).

Batching: one scene at a time, all its boxes together (ODAM's rows in vmapped chunks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from attnlab.data.kitti import points_in_boxes
from attnlab.errors import InputError, unknown
from attnlab.explain.cam import min_max_normalize
from attnlab.explain.odam import InstanceExplanation, guided_gradients, odam
from attnlab.models.outputs import Detections3D
from attnlab.models.pointpillars.detector import PointPillars
from attnlab.models.pointpillars.pillars import point_cells

METHODS = ("odam", "odam-class", "guided-gradcam", "guided-odam")
FLOORS = ("random", "uniform")
LAYER = "pseudo_image"  # the adapter's name for the pseudo-image (the thesis's layer)


class DetectorScores(nn.Module):
    """PointPillars as :func:`attnlab.explain.odam.odam` takes a detector: per-anchor sigmoid class
    scores (B, A, K) and decoded boxes (B, A, 7), the values a kept box holds at its ``anchor_index``.

    ``from_points=False``: the input is the (B, C, ny, nx) pseudo-image, seen by the module
    ``pseudo_image`` (ODAM's layer; ``model.backbone.blocks.0`` ... work too). ``from_points=True``:
    the input is one cloud as a (1, N, 4) tensor (for gradients at the points)."""

    def __init__(self, model: PointPillars, *, from_points: bool = False) -> None:
        super().__init__()
        self.model = model
        self.pseudo_image = nn.Identity()
        self.from_points = from_points

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.from_points:
            if x.dim() != 3 or x.shape[0] != 1:
                raise InputError(f"points must be one (1, N, 4) cloud, got {tuple(x.shape)}")
            image = self.model.pseudo_image([x[0]])
        else:
            image = x if x.requires_grad else x.detach().requires_grad_(True)  # the gradients' leaf
        cls_logits, deltas, dir_logits = self.model.head(self.model.backbone(self.pseudo_image(image)))
        boxes = self.model.decode_boxes(deltas, dir_logits, self.model.anchors.expand_as(deltas))
        return {"scores": torch.sigmoid(cls_logits), "boxes": boxes}


@dataclass
class BoxExplanations:
    """Per-point maps of the detected boxes of one scene."""

    maps: dict[str, torch.Tensor]  # method -> (I, N) attention of each point, one row a box
    inside: torch.Tensor  # (I, N) bool: each point inside each box
    boxes: torch.Tensor  # (I, 7) x y z w l h ry
    labels: torch.Tensor  # (I,) long predicted classes
    scores: torch.Tensor  # (I,) class scores
    grid_maps: dict[str, torch.Tensor]  # "odam", "gradcam": (I, h, w) maps at the layer, in [0, 1]


def point_values(maps: torch.Tensor, cells: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(I, N) value of each point's pillar in (I, h, w) maps; ``cells`` (N,) from ``point_cells``
    on the (ny, nx) ``grid``, -1 (value 0) outside it. A coarser map (a backbone layer, h = ny / s)
    gives each pillar the value of the cell it falls in."""
    ny, nx = grid
    h, w = maps.shape[-2:]
    if ny % h or nx % w:
        raise InputError(f"a ({h}, {w}) map does not tile the ({ny}, {nx}) pillar grid")
    valid = cells >= 0
    safe = cells.clamp(min=0)
    iy, ix = safe // nx * h // ny, safe % nx * w // nx
    values = maps[:, iy, ix]  # (I, N)
    return torch.where(valid, values, torch.zeros_like(values))


def box_share(attention: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """(I,) the share of each (I, N) non-negative map on the points inside its box (I, N); 0 for a
    map with no attention at all."""
    if attention.shape != inside.shape:
        raise InputError(f"maps {tuple(attention.shape)} and box masks {tuple(inside.shape)} must match")
    if (attention < 0).any():
        raise InputError("mAPB needs non-negative maps")
    total = attention.sum(1)
    part = (attention * inside.to(attention.dtype)).sum(1)
    return torch.where(total > 0, part / torch.where(total > 0, total, torch.ones_like(total)), 0.0)


def mapb(shares: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str]) -> dict[str, float]:
    """Mean of the (M,) shares per class (``labels`` (M,)), in %, and the count of maps ``n/<class>``;
    NaN for a class with no map."""
    out: dict[str, float] = {}
    for k, name in enumerate(class_names):
        chosen = shares[labels == k]
        out[name] = float(chosen.double().mean() * 100) if len(chosen) else float("nan")
        out[f"n/{name}"] = float(len(chosen))
    return out


def _unit(values: torch.Tensor) -> torch.Tensor:
    """Each row divided by its maximum (rows of zeros stay zeros)."""
    top = values.amax(1, keepdim=True)
    return values / torch.where(top > 0, top, torch.ones_like(top))


def _check_methods(methods: Sequence[str]) -> None:
    for method in methods:
        if method not in METHODS + FLOORS:
            raise unknown("point explanation method", method, METHODS + FLOORS)


def explain_boxes(
    model: PointPillars,
    cloud: torch.Tensor,
    detections: Detections3D,
    *,
    methods: Sequence[str] = METHODS + FLOORS,
    layer: str = LAYER,
    chunk: int = 1,
    generator: torch.Generator | None = None,
) -> BoxExplanations:
    """Per-point maps of every box in ``detections`` (one scene's, from ``model([cloud])`` in eval
    mode) for ``methods`` (module docstring). ``layer``: a module name of :class:`DetectorScores`.
    ``chunk``: backward rows vmapped together; 1 (a plain backward each) because on one CPU thread
    40 rows took 3.5 s that way against 8.4 s in one vmapped chunk (``pointpillars-small``)."""
    _check_methods(methods)
    if cloud.dim() != 2 or cloud.shape[1] != 4 or len(cloud) == 0:
        raise InputError(f"the cloud must be (N > 0, 4) points x y z r, got {tuple(cloud.shape)}")
    if len(detections.labels) == 0:
        raise InputError("no detected box to explain in this scene")
    boxes = detections.boxes.detach()
    inside = torch.from_numpy(points_in_boxes(cloud.detach().cpu().numpy(), boxes.cpu().double().numpy())).T
    inside = inside.to(cloud.device)  # (I, N)
    cfg = model.config.pillars
    cells = point_cells(cloud, cfg)
    instances, classes = detections.anchor_index[None], detections.labels[None]  # (1, I)
    with torch.no_grad():
        image = model.eval().pseudo_image([cloud])
    scores = DetectorScores(model)
    grid_maps: dict[str, torch.Tensor] = {}
    maps: dict[str, torch.Tensor] = {}
    explained: InstanceExplanation | None = None
    if {"odam", "odam-class", "guided-odam"} & set(methods):
        explained = odam(scores, image, layer, instances, classes=classes, chunk=chunk, normalize=True)
        grid_maps["odam"] = explained.maps[0]
        grid_maps["odam-class"] = explained.class_maps[0]
    if "guided-gradcam" in methods:
        cam = odam(
            scores, image, layer, instances, classes=classes, boxes=False, chunk=chunk, weights="gradcam"
        )
        grid_maps["gradcam"] = min_max_normalize(cam.maps[0])
        explained = explained or cam
    on_points = {name: point_values(m, cells, cfg.grid_size) for name, m in grid_maps.items()}
    if explained is not None and {"guided-gradcam", "guided-odam"} & set(methods):
        grads = guided_gradients(DetectorScores(model, from_points=True), cloud[None], explained, chunk)
        g_input = _unit(grads[0].norm(dim=-1))  # (I, N)
        if "guided-odam" in methods:
            maps["guided-odam"] = (on_points["odam"] + g_input).square()
        if "guided-gradcam" in methods:
            maps["guided-gradcam"] = on_points["gradcam"] * g_input
    for name in ("odam", "odam-class"):
        if name in methods:
            maps[name] = on_points[name]
    shape = inside.shape
    if "random" in methods:
        maps["random"] = torch.rand(shape, generator=generator, dtype=cloud.dtype).to(cloud.device)
    if "uniform" in methods:
        maps["uniform"] = torch.ones(shape, dtype=cloud.dtype, device=cloud.device)
    return BoxExplanations(
        maps={m: maps[m].detach() for m in methods},
        inside=inside,
        boxes=boxes,
        labels=detections.labels.detach(),
        scores=detections.scores.detach(),
        grid_maps={k: v.detach() for k, v in grid_maps.items()},
    )


def scene_shares(explained: BoxExplanations) -> dict[str, torch.Tensor]:
    """method -> (I,) mAPB term of each box of the scene."""
    return {m: box_share(a, explained.inside) for m, a in explained.maps.items()}


def deletion_scores(
    model: PointPillars,
    cloud: torch.Tensor,
    detections: Detections3D,
    maps: Mapping[str, torch.Tensor],
    inside: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """name -> (I,) each box's score after deleting its map's ``k`` most attended points (``k`` its
    points inside the box) over its score before; also ``random`` and ``box`` (module docstring).
    ``maps``: name -> (I, N) attention of each box; ``inside`` (I, N) bool."""
    n = len(cloud)
    tiebreak = torch.randperm(n, generator=generator).to(cloud.device)  # the same order for every map
    names = [*maps, "random", "box"]
    out = {name: torch.empty(len(detections.labels), dtype=cloud.dtype) for name in names}
    with torch.no_grad():
        pairs = zip(detections.anchor_index.tolist(), detections.labels.tolist(), strict=True)
        for i, (anchor, cls) in enumerate(pairs):
            k = int(inside[i].sum())
            removed = []
            for name in maps:
                ranked = tiebreak[torch.argsort(maps[name][i][tiebreak], descending=True, stable=True)]
                removed.append(ranked[:k])
            removed.append(torch.randperm(n, generator=generator).to(cloud.device)[:k])
            removed.append(inside[i].nonzero().squeeze(1))
            clouds = [cloud]
            for gone in removed:
                keep = torch.ones(n, dtype=torch.bool, device=cloud.device)
                keep[gone] = False
                clouds.append(cloud[keep])
            cls_logits = model.head(model.backbone(model.pseudo_image(clouds)))[0]  # (1 + M, A, K)
            score = torch.sigmoid(cls_logits[:, anchor, cls]).cpu()
            for j, name in enumerate(names):
                out[name][i] = score[1 + j] / score[0]
    return out
