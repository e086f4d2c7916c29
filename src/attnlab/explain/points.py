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

Batching: one scene at a time. A box's outputs depend only on the cells of the pseudo-image
within the backbone's receptive field of its anchor (67 x 67 of 192 x 192 cells for
``pointpillars-small``), so each box is explained on a window of the pseudo-image around it
(:class:`Windows`) and the windows of a scene's boxes run as one batch: one backward per output for
all boxes, each through a small window, instead of one through the whole image per box and output.
The maps equal those of the whole image (tested against it in float64).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.data.kitti import points_in_boxes
from attnlab.errors import InputError, unknown
from attnlab.explain._checks import check_finite
from attnlab.explain.cam import explanation_mode, min_max_normalize
from attnlab.explain.guided import guided_relus
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


@dataclass(frozen=True)
class Windows:
    """One window of the pseudo-image per box, each holding every cell its box's outputs depend on
    (:meth:`attnlab.models.pointpillars.backbone.Backbone.input_span`), all of one size. The network
    run on a window gives the box's outputs exactly: the window starts at a multiple of the
    backbone's stride, and each of its sides either lies beyond the box's receptive field or is the
    pseudo-image's own edge, where the convolutions pad with the same zeros."""

    origins: list[tuple[int, int]]  # (row, col) of each window's first cell in the pseudo-image
    size: tuple[int, int]  # (rows, cols)
    local: torch.Tensor  # (I,) each box's anchor index in its window's head output
    grid: tuple[int, int]  # (ny, nx) the pseudo-image's

    def crop(self, image: torch.Tensor) -> torch.Tensor:
        """(1, C, ny, nx) -> (I, C, *size)."""
        h, w = self.size
        return torch.stack([image[0, :, y : y + h, x : x + w] for y, x in self.origins])

    def paste(self, maps: torch.Tensor) -> torch.Tensor:
        """(I, ..., *size) window maps -> (I, ..., ny, nx), zero outside each window."""
        h, w = self.size
        full = maps.new_zeros(*maps.shape[:-2], *self.grid)
        for i, (y, x) in enumerate(self.origins):
            full[i, ..., y : y + h, x : x + w] = maps[i]
        return full


def _axis_windows(model: PointPillars, cells: int, outputs: int) -> tuple[int, list[int]]:
    """Window length along one axis of ``cells`` input cells with ``outputs`` head cells, and the
    window start for each head cell; the whole axis when a window would not be shorter."""
    stride = model.backbone.total_stride
    spans = [model.backbone.input_span(o, o) for o in range(outputs)]
    starts = [max(lo, 0) // stride * stride for lo, _ in spans]
    need = max(min(hi, cells - 1) - start + 1 for (_, hi), start in zip(spans, starts, strict=True))
    size = -(-need // stride) * stride
    if cells % stride or size >= cells:
        return cells, [0] * outputs
    return size, [min(start, cells - size) for start in starts]


def box_windows(model: PointPillars, anchor_index: torch.Tensor) -> Windows:
    """The :class:`Windows` of the boxes kept at ``anchor_index`` (I,)."""
    c = model.config
    ny, nx = c.pillars.grid_size
    hy, hx = c.feature_hw  # the head's grid, stride strides[0] over the pseudo-image
    per_cell, step = c.anchors.per_location, c.strides[0]
    height, row_starts = _axis_windows(model, ny, hy)
    width, col_starts = _axis_windows(model, nx, hx)
    cell, slot = anchor_index.cpu() // per_cell, anchor_index.cpu() % per_cell
    rows, cols = (cell // hx).tolist(), (cell % hx).tolist()
    origins = [(row_starts[r], col_starts[q]) for r, q in zip(rows, cols, strict=True)]
    local = [
        ((r - y // step) * (width // step) + q - x // step) * per_cell + int(k)
        for r, q, (y, x), k in zip(rows, cols, origins, slot, strict=True)
    ]
    return Windows(origins, (height, width), torch.tensor(local, device=anchor_index.device), (ny, nx))


def _window_outputs(
    model: PointPillars, crops: torch.Tensor, windows: Windows, det: Detections3D, boxes: bool
) -> torch.Tensor:
    """(I, 1 + 7) or (I, 1): each window's box score, then its 7 decoded parameters."""
    cls_logits, deltas, dir_logits = model.head(model.backbone(crops))  # (I, A_window, ...)
    rows, local = torch.arange(len(crops), device=crops.device), windows.local
    out = torch.sigmoid(cls_logits[rows, local, det.labels])[:, None]
    if not boxes:
        return out
    anchors = model.anchors[det.anchor_index]
    return torch.cat([out, model.decode_boxes(deltas[rows, local], dir_logits[rows, local], anchors)], 1)


def _windowed_maps(
    model: PointPillars, image: torch.Tensor, det: Detections3D, windows: Windows, methods: Sequence[str]
) -> dict[str, torch.Tensor]:
    """The (I, ny, nx) grid maps "odam", "odam-class" and "gradcam" as needed: all boxes' windows in
    one backward per output (of the batch's sum: windows do not interact in eval mode)."""
    odam_needed = bool({"odam", "odam-class", "guided-odam"} & set(methods))
    with explanation_mode(model):
        crops = windows.crop(image.detach()).requires_grad_(True)
        outputs = _window_outputs(model, crops, windows, det, boxes=odam_needed)
        per_output, weights = [], None
        for q in range(outputs.shape[1]):
            (grads,) = torch.autograd.grad(outputs[:, q].sum(), crops, retain_graph=q + 1 < outputs.shape[1])
            if q == 0:  # Grad-CAM's weights: the class gradient's mean over the whole grid
                weights = grads.sum((2, 3)) / math.prod(windows.grid)  # (I, C)
            heat = F.relu((grads * crops.detach()).sum(1))  # (I, *size)
            per_output.append(min_max_normalize(windows.paste(heat)))
    maps = {}
    if odam_needed:
        maps["odam"], maps["odam-class"] = torch.stack(per_output).amax(0), per_output[0]
    if "guided-gradcam" in methods and weights is not None:
        maps["gradcam"] = min_max_normalize(F.relu(torch.einsum("ic,chw->ihw", weights, image[0].detach())))
    return maps


def _windowed_guided(
    model: PointPillars, image: torch.Tensor, cloud: torch.Tensor, det: Detections3D, windows: Windows
) -> torch.Tensor:
    """(I, N, 4) guided-backprop gradients of each box's score at the points: one guided backward of
    all windows to the pseudo-image, then one through the pillar network per box."""
    with explanation_mode(model), guided_relus(model):
        crops = windows.crop(image.detach()).requires_grad_(True)
        (grads,) = torch.autograd.grad(_window_outputs(model, crops, windows, det, False).sum(), crops)
        on_grid = windows.paste(grads)  # (I, C, ny, nx)
        leaf = cloud.detach().requires_grad_(True)
        full = model.pseudo_image([leaf])  # (1, C, ny, nx)
        out = [
            torch.autograd.grad(full, leaf, on_grid[i : i + 1], retain_graph=i + 1 < len(on_grid))[0]
            for i in range(len(on_grid))
        ]
    grads = torch.stack(out)
    check_finite(grads, "guided-backpropagation gradients are NaN or inf", verb="for points")
    return grads


def _batched(
    model: PointPillars,
    image: torch.Tensor,
    cloud: torch.Tensor,
    det: Detections3D,
    methods: Sequence[str],
    per_pass: int,
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Grid maps and guided gradients of every box, ``per_pass`` boxes' windows at a time."""
    guided = bool({"guided-gradcam", "guided-odam"} & set(methods))
    parts: list[dict[str, torch.Tensor]] = []
    grads = []
    for start in range(0, len(det.labels), per_pass):
        part = select_boxes(det, slice(start, start + per_pass))
        windows = box_windows(model, part.anchor_index)
        parts.append(_windowed_maps(model, image, part, windows, methods))
        if guided:
            grads.append(_windowed_guided(model, image, cloud, part, windows))
    maps = {name: torch.cat([p[name] for p in parts]) for name in parts[0]}
    return maps, torch.cat(grads) if grads else None


def _one_at_a_time(
    model: PointPillars,
    image: torch.Tensor,
    cloud: torch.Tensor,
    det: Detections3D,
    methods: Sequence[str],
    layer: str,
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Grid maps and guided gradients of every box from the whole pseudo-image, one backward per
    box and output (:func:`attnlab.explain.odam.odam`): the reference :func:`_batched` must equal."""
    instances, classes = det.anchor_index[None], det.labels[None]  # (1, I)
    scores = DetectorScores(model)
    maps: dict[str, torch.Tensor] = {}
    explained: InstanceExplanation | None = None
    if {"odam", "odam-class", "guided-odam"} & set(methods):
        explained = odam(scores, image, layer, instances, classes=classes, chunk=1, normalize=True)
        maps["odam"], maps["odam-class"] = explained.maps[0], explained.class_maps[0]
    if "guided-gradcam" in methods:
        cam = odam(scores, image, layer, instances, classes=classes, boxes=False, chunk=1, weights="gradcam")
        maps["gradcam"] = min_max_normalize(cam.maps[0])
        explained = explained or cam
    if explained is None or not {"guided-gradcam", "guided-odam"} & set(methods):
        return maps, None
    return maps, guided_gradients(DetectorScores(model, from_points=True), cloud[None], explained, 1)[0]


def explain_boxes(
    model: PointPillars,
    cloud: torch.Tensor,
    detections: Detections3D,
    *,
    methods: Sequence[str] = METHODS + FLOORS,
    layer: str = LAYER,
    batched: bool = True,
    per_pass: int = 16,
    generator: torch.Generator | None = None,
) -> BoxExplanations:
    """Per-point maps of every box in ``detections`` (one scene's, from ``model([cloud])`` in eval
    mode) for ``methods`` (module docstring).

    ``batched`` (the default): each box's outputs are computed on its window of the pseudo-image
    (:class:`Windows`), ``per_pass`` boxes' windows as one batch, one backward per output for all of
    them; the maps are those of the whole image exactly. ``batched=False``: the whole image, one
    backward per box and output (the reference; ``layer``, a module name of
    :class:`DetectorScores`, is used only there)."""
    _check_methods(methods)
    if cloud.dim() != 2 or cloud.shape[1] != 4 or len(cloud) == 0:
        raise InputError(f"the cloud must be (N > 0, 4) points x y z r, got {tuple(cloud.shape)}")
    if len(detections.labels) == 0:
        raise InputError("no detected box to explain in this scene")
    if isinstance(per_pass, bool) or not isinstance(per_pass, int) or per_pass < 1:
        raise InputError(f"per_pass must be a positive number of boxes, got {per_pass!r}")
    boxes = detections.boxes.detach()
    inside = torch.from_numpy(points_in_boxes(cloud.detach().cpu().numpy(), boxes.cpu().double().numpy())).T
    inside = inside.to(cloud.device)  # (I, N)
    cfg = model.config.pillars
    with torch.no_grad():
        image = model.eval().pseudo_image([cloud])
    if batched:
        grid_maps, grads = _batched(model, image, cloud, detections, methods, per_pass)
    else:
        grid_maps, grads = _one_at_a_time(model, image, cloud, detections, methods, layer)
    cells = point_cells(cloud, cfg)
    on_points = {name: point_values(m, cells, cfg.grid_size) for name, m in grid_maps.items()}
    maps: dict[str, torch.Tensor] = {}
    if grads is not None:
        g_input = _unit(grads.norm(dim=-1))  # (I, N)
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


def select_boxes(det: Detections3D, rows: slice | torch.Tensor) -> Detections3D:
    """The detections at ``rows``."""
    return Detections3D(det.boxes[rows], det.scores[rows], det.labels[rows], det.anchor_index[rows])


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
