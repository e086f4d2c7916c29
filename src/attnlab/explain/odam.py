"""ODAM: instance-specific gradient maps for object detectors.

ODAM, Zhao & Chan, "ODAM: Gradient-based instance-specific visual explanations
for object detection", ICLR 2023 (arXiv:2304.06354). For a detected instance
``i`` and an output ``y`` of it (its class-``c`` score or one of its 4 box
coordinates) the map at a feature layer ``A`` (B, K, *S) is

    H = ReLU( sum_k  dy/dA_k  *  A_k )        (elementwise over the positions S)

the gradient map itself weighs the features, position by position: no Grad-CAM
channel average, which would give every instance of a class the same weights.
The class-score map and the 4 box-coordinate maps are merged by their elementwise
maximum (seed 004, sec. 2.2: "the maximum of the maps at each element of the
intermediate feature").

Guided ODAM (seed 004, eq. 1) adds the guided-backpropagation gradient of the
class score at the input to the ODAM map upsampled to the input, and squares:
``(A_ODAM + g_input)^2``; ``combine="product"`` gives the Guided Grad-CAM-style
``A_ODAM * g_input`` instead. The seed's sum is not scale-free: ODAM maps and
input gradients must be of comparable magnitude for both terms to matter.

Detectors: any ``nn.Module`` whose forward returns a dataclass, object or dict with
``scores`` (B, N, C) and ``boxes`` (B, N, D) for N candidate instances (anchors or
queries, before any non-differentiable post-processing such as NMS); D = 4 for 2-D
boxes, 7 for 3-D boxes (x y z w l h yaw; :mod:`attnlab.explain.points`). The scores
explained are the ones the detector returns (logits or probabilities).

``weights="gradcam"`` weighs the channels by their gradient averaged over the
positions instead (Grad-CAM per instance), for Guided Grad-CAM on detectors.

Batching: one backward serves every image and a chunk of (instance, output) rows:

* images: the backward starts from the sum over images of each row's output.
  Exact when images do not interact in the forward, which holds in eval mode
  (used here) unless the forward mixes the batch (attention across images,
  batch-level statistics computed on the fly).
* rows: ``torch.autograd.grad(..., is_grads_batched=True)`` runs the ``chunk``
  vector-Jacobian products of a chunk as one vmapped backward; always exact, but
  every backward op must have a vmap rule; ``chunk=1`` falls back to one plain
  backward per row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import ConfigError, InputError, unknown
from attnlab.explain._checks import check_finite, check_inputs
from attnlab.explain.cam import explanation_mode, min_max_normalize, upsample
from attnlab.explain.capture import features
from attnlab.explain.guided import guided_relus

Indices = int | Sequence[int] | torch.Tensor
Reduce = Callable[[torch.Tensor], torch.Tensor]
COMBINE = ("squared_sum", "product")
WEIGHTS = ("odam", "gradcam")  # gradient times activation per position, or Grad-CAM's channel means


class Detections(Protocol):
    """What a detector's forward returns (a dict with these keys works too)."""

    scores: torch.Tensor  # (B, N, C)
    boxes: torch.Tensor  # (B, N, D), D = 4 (2-D) or 7 (3-D)


@dataclass
class InstanceExplanation:
    """ODAM maps of the chosen instances of every image."""

    maps: torch.Tensor  # (B, I, *S) merged map (class map if boxes were not explained)
    class_maps: torch.Tensor  # (B, I, *S) map of each instance's class score
    box_maps: torch.Tensor | None  # (B, I, D, *S) map of each box coordinate, or None
    instances: torch.Tensor  # (B, I) int64 explained instance indices
    classes: torch.Tensor  # (B, I) int64 explained classes
    scores: torch.Tensor  # (B, I) the detector's score of each instance's class


def _field(output: object, name: str) -> object:
    return output.get(name) if isinstance(output, Mapping) else getattr(output, name, None)


def detections(output: object, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The (B, N, C) scores and (B, N, D) boxes of a detector's output, validated."""
    scores, boxes = _field(output, "scores"), _field(output, "boxes")
    if not isinstance(scores, torch.Tensor) or not isinstance(boxes, torch.Tensor):
        raise InputError(
            f"detector returned {type(output).__name__}; ODAM needs 'scores' (B, N, C) and "
            "'boxes' (B, N, D) tensors as fields or keys"
        )
    if (
        scores.dim() != 3
        or scores.shape[0] != batch
        or boxes.dim() != 3
        or boxes.shape[:2] != scores.shape[:2]
        or boxes.shape[2] == 0
    ):
        raise InputError(
            f"detector scores {tuple(scores.shape)} and boxes {tuple(boxes.shape)} must be "
            f"(B={batch}, N, C) and (B, N, D)"
        )
    return scores, boxes


def _indices(value: Indices | None, like: torch.Tensor, limit: int, name: str) -> torch.Tensor:
    """(B, I) int64 indices in [0, limit) from an int, an (I,) list or a (B, I) tensor."""
    batch = like.shape[0]
    chosen = torch.as_tensor(value, device=like.device)
    if chosen.dtype.is_floating_point or chosen.dtype == torch.bool or chosen.dim() > 2:
        raise InputError(f"{name} must be an int, a list of ints or a (B, I) int tensor, got {chosen.dtype}")
    chosen = chosen.long().reshape(1, -1).expand(batch, -1) if chosen.dim() < 2 else chosen.long()
    if chosen.shape[0] != batch or chosen.shape[1] == 0:
        raise InputError(f"{name} must give at least one index for each of the {batch} images")
    if int(chosen.min()) < 0 or int(chosen.max()) >= limit:
        raise InputError(f"{name} must lie in [0, {limit}), got {chosen.tolist()}")
    return chosen


def _rows(
    scores: torch.Tensor,
    boxes: torch.Tensor,
    instances: torch.Tensor,
    classes: Indices | None,
    with_boxes: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, I * Q) outputs to explain, Q = 1 + D (class, then each box coordinate) or 1, and the classes."""
    per_instance = scores.gather(1, instances[..., None].expand(-1, -1, scores.shape[2]))  # (B, I, C)
    if classes is None:
        chosen = per_instance.detach().argmax(2)
    else:
        chosen = _indices(classes, scores, scores.shape[2], "classes")
        if chosen.shape != instances.shape:
            raise InputError(f"classes {tuple(chosen.shape)} must match instances {tuple(instances.shape)}")
    picked = per_instance.gather(2, chosen[..., None])  # (B, I, 1)
    if with_boxes:
        coords = boxes.gather(1, instances[..., None].expand(-1, -1, boxes.shape[2]))  # (B, I, D)
        picked = torch.cat([picked, coords], 2)  # (B, I, 1 + D)
    return picked.flatten(1), chosen


def _row_grads(rows: torch.Tensor, wrt: torch.Tensor) -> torch.Tensor | None:
    """(R, *wrt.shape) gradient of each column of ``rows`` (B, R), summed over images."""
    count = rows.shape[1]
    if count == 1:
        (grads,) = torch.autograd.grad(rows.sum(), wrt, retain_graph=True, allow_unused=True)
        return None if grads is None else grads[None]
    basis = torch.eye(count, dtype=rows.dtype, device=rows.device)[:, None].expand(-1, rows.shape[0], -1)
    (grads,) = torch.autograd.grad(
        rows, wrt, grad_outputs=basis, retain_graph=True, is_grads_batched=True, allow_unused=True
    )  # (R, B, ...)
    return grads


def _chunked(rows: torch.Tensor, wrt: torch.Tensor, chunk: int, layer: str, reduce: Reduce) -> torch.Tensor:
    """``reduce`` of the gradients of every column of ``rows``, ``chunk`` columns per backward.

    Reducing inside the loop keeps one chunk of gradients alive at a time."""
    reduced = []
    for start in range(0, rows.shape[1], chunk):
        grads = _row_grads(rows[:, start : start + chunk], wrt)
        if grads is None:
            raise InputError(f"'{layer}' does not influence the detections: pick a layer the heads depend on")
        reduced.append(reduce(grads))
    return torch.cat(reduced)


def _check_features(acts: torch.Tensor, layer: str, batch: int) -> None:
    if acts.dim() < 3 or acts.shape[0] != batch or not acts.is_floating_point():
        raise InputError(
            f"layer '{layer}' outputs {acts.dtype} {tuple(acts.shape)}; ODAM needs floating "
            f"channels-first features (B={batch}, K, ...)"
        )
    if not acts.requires_grad:
        raise InputError(f"no gradient reaches layer '{layer}' (is it run under torch.no_grad?)")


def _check_options(detector: nn.Module, inputs: torch.Tensor, chunk: int) -> None:
    check_inputs(inputs, detector, token_ids=True)  # a layer after an embedding has gradients
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ConfigError(f"chunk must be a positive int, got {chunk!r}")


def _finish(
    maps: torch.Tensor, spatial: int, upsample_to: Sequence[int] | None, normalize: bool
) -> torch.Tensor:
    """(B, I, Q, *S) maps resized and normalised one map at a time."""
    lead = maps.shape[: maps.dim() - spatial]
    flat = maps.flatten(0, len(lead) - 1)  # (B * I * Q, *S)
    flat = flat if upsample_to is None else upsample(flat, upsample_to)
    flat = min_max_normalize(flat) if normalize else flat
    return flat.view(*lead, *flat.shape[1:])


def _weigh(grads: torch.Tensor, values: torch.Tensor, weights: str) -> torch.Tensor:
    """(R, B, *S) maps from (R, B, K, *S) gradients and (B, K, *S) activations."""
    if weights == "gradcam":
        grads = grads.mean(tuple(range(3, grads.dim())), keepdim=True)  # (R, B, K, 1, ...)
    return F.relu((grads * values).sum(2))


def odam(
    detector: nn.Module,
    inputs: torch.Tensor,
    layer: str,
    instances: Indices,
    *,
    classes: Indices | None = None,
    boxes: bool = True,
    chunk: int = 8,
    upsample_to: Sequence[int] | None = None,
    normalize: bool = False,
    weights: str = "odam",
) -> InstanceExplanation:
    """ODAM maps at ``layer`` for the ``instances`` of each image in ``inputs``.

    ``instances``: an index, a list used for every image, or a (B, I) tensor.
    ``classes`` defaults to each instance's highest-scoring class. ``boxes=False``
    skips the D box-coordinate maps ((1 + D)x fewer backward rows). ``chunk`` rows share
    one backward. ``upsample_to`` / ``normalize`` as in ``class_activation_maps``
    (``normalize`` scales each output's map before they are merged). ``weights``:
    ``"odam"`` (``dy/dA * A`` position by position) or ``"gradcam"`` (``mean_S(dy/dA) * A``)."""
    if weights not in WEIGHTS:
        raise unknown("weights", weights, WEIGHTS)
    _check_options(detector, inputs, chunk)
    with explanation_mode(detector), features(detector, [layer]) as feats:
        scores, coords = detections(detector(inputs), inputs.shape[0])
        acts = feats[layer]
        _check_features(acts, layer, inputs.shape[0])
        chosen = _indices(instances, scores, scores.shape[1], "instances")
        rows, explained_classes = _rows(scores, coords, chosen, classes, boxes)
        check_finite(rows, "the detector's explained scores or boxes are NaN or inf", verb="for images")
        values = acts.detach()
        maps = _chunked(
            rows, acts, chunk, layer, lambda grads: _weigh(grads, values, weights)
        )  # (I Q, B, *S)
    maps = maps.view(chosen.shape[1], -1, *maps.shape[1:]).movedim(2, 0)  # (I, Q, B, *S) -> (B, I, Q, *S)
    check_finite(maps, "ODAM maps are NaN or inf", verb="for images")
    maps = _finish(maps, values.dim() - 2, upsample_to, normalize)
    picked = rows.detach().view(*chosen.shape, -1)[..., 0]  # (B, I)
    box_maps = maps[:, :, 1:] if boxes else None
    merged = maps.amax(2)  # (B, I, *S)
    return InstanceExplanation(merged, maps[:, :, 0], box_maps, chosen, explained_classes, picked)


def guided_gradients(
    detector: nn.Module, inputs: torch.Tensor, explained: InstanceExplanation, chunk: int = 8
) -> torch.Tensor:
    """(B, I, *inputs.shape[1:]) guided-backprop input gradients of each explained instance's
    class score (the instances and classes of ``explained``). ``inputs`` are only checked for being
    batched: any floating tensor the detector takes, (B, C, H, W) images or (1, N, 4) points."""
    with explanation_mode(detector), guided_relus(detector):
        leaf = inputs.detach().requires_grad_(True)
        scores, coords = detections(detector(leaf), inputs.shape[0])
        rows, _ = _rows(scores, coords, explained.instances, explained.classes, with_boxes=False)
        grads = _chunked(rows, leaf, chunk, "inputs", lambda grads: grads)  # (I, B, C, *S)
    grads = grads.movedim(0, 1)  # (B, I, C, *S)
    check_finite(grads, "guided-backpropagation gradients are NaN or inf", verb="for images")
    return grads


def guided_odam(
    detector: nn.Module,
    inputs: torch.Tensor,
    layer: str,
    instances: Indices,
    *,
    classes: Indices | None = None,
    boxes: bool = True,
    chunk: int = 8,
    combine: str = "squared_sum",
) -> InstanceExplanation:
    """Guided ODAM: ODAM at ``layer`` upsampled to ``inputs`` (B, C, *S) merged with
    guided backpropagation; ``maps`` is (B, I, C, *S), the other maps are ODAM's.

    ``combine``: ``"squared_sum"`` (seed 004, eq. 1) or ``"product"``. Two passes:
    ODAM needs the detector's true gradients, which guided ReLUs would change."""
    if combine not in COMBINE:
        raise unknown("combine", combine, COMBINE)
    check_inputs(inputs, detector, min_dim=3)
    explained = odam(
        detector,
        inputs,
        layer,
        instances,
        classes=classes,
        boxes=boxes,
        chunk=chunk,
        upsample_to=inputs.shape[2:],
    )
    guided = guided_gradients(detector, inputs, explained, chunk)
    spread = explained.maps[:, :, None]  # (B, I, 1, *S): the map is shared by the input channels
    explained.maps = (spread + guided).square() if combine == "squared_sum" else spread * guided
    return explained
