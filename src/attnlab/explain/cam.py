"""Class activation maps for any model, by target layer name.

Methods (``method=``), each one weighted sum of the target layer's feature maps
``A`` (B, K, *S) over its K channels, where ``S`` is (L,), (H, W) or (T, H, W):

* ``"cam"``: CAM, Zhou et al. 2016 (arXiv:1512.04150). For GAP + linear heads;
  the weights are the linear layer's row of the target class (``linear=`` names
  it). No ReLU, as in the paper: the map keeps negative evidence.
* ``"gradcam"``: Grad-CAM, Selvaraju et al. 2017 (arXiv:1610.02391):
  ``ReLU(sum_k mean_S(dy/dA_k) A_k)``.
* ``"gradcam++"``: Grad-CAM++, Chattopadhay et al. 2018 (arXiv:1710.11063), the
  closed form for ``Y = exp(y)``: ``alpha = g^2 / (2 g^2 + sum_S(A_k) g^3)`` with
  ``g = dy/dA``, weights ``sum_S alpha ReLU(exp(y) g)``. The ``exp(y)`` factor is
  kept as in the paper, so unnormalised maps scale with ``exp(score)``.
* ``"hirescam"``: HiResCAM, Draelos & Carin 2020 (arXiv:2011.08891):
  ``ReLU(sum_k dy/dA_k * A_k)``; equals Grad-CAM when the head is GAP + linear.
  The final ReLU is Grad-CAM's, kept so the two stay comparable (and equal
  where the paper proves them equal).
* ``"layercam"``: LayerCAM, Jiang et al. 2021 (IEEE TIP):
  ``ReLU(sum_k ReLU(dy/dA_k) * A_k)``.

Video feature maps (B, K, T, H, W) give per-frame maps (B, T, H, W); gradient
averages (Grad-CAM) and sums (Grad-CAM++) run over all of T, H, W, one weight per
channel, as captum's ``LayerGradCam`` does. The layer's output must be channels
first; transformer tokens (B, L, D) need a module that transposes them.

One rule for every method, captum's: ``A`` is the layer's output as its forward
returned it, before any in-place op of a later module. A conv followed by
``nn.ReLU(inplace=True)`` is seen before the ReLU (negative values included), and
the gradients are those of that output, zero where the ReLU cut. The rest of the
network runs on a copy, so the in-place op cannot reach ``A``.

Scores: ``score_fn(output)`` must return (B, num_classes) scores. Without it the
output itself is used if it is a tensor, else its ``logits`` field (attnlab models
return dataclasses). A function rather than an ``output_field`` name because it
also covers probabilities, detection scores or any other head with no second
argument. Targets default to each example's predicted class.

One forward and one backward serve the whole batch (on CPU, each chunk of
``CPU_CHUNK`` examples): the backward starts from the sum of every example's target
score, which is exact because the model runs in eval mode, where examples do not
interact. Gradients come from ``torch.autograd.grad``,
so nothing accumulates in the parameters' ``.grad``; the model's training flags
and ``requires_grad`` flags are restored on exit, also after an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import ConfigError, InputError, unknown
from attnlab.explain._checks import Targets, check_finite, check_inputs, check_target_range, check_targets
from attnlab.explain.capture import features

METHODS = ("cam", "gradcam", "gradcam++", "hirescam", "layercam")
# On CPU the batch runs in chunks of this many examples: a ResNet-50 Grad-CAM at batch 64
# took 2.27 s in chunks of 4 against 7.35 s in one call (2 threads; activations of 4
# images stay in cache; `python -m benchmarks.explain --chunk-sweep`), with identical
# maps. GPUs take the whole batch in one call.
CPU_CHUNK = 4
ScoreFn = Callable[[object], torch.Tensor]
_INTERPOLATION = {1: "linear", 2: "bilinear", 3: "trilinear"}
UPSAMPLE_MODES = ("linear", "nearest")


@dataclass
class Explanation:
    """Maps for a batch, with the class each example's map explains."""

    maps: torch.Tensor  # (B, *S) maps; S depends on the method and input
    targets: torch.Tensor  # (B,) int64 explained classes
    scores: torch.Tensor  # (B,) the model's score for each target


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Run ``model`` in eval mode inside the block, then restore every module's flag."""
    flags = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for module, flag in flags:
            module.training = flag


@contextmanager
def explanation_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode with autograd on and every parameter tracked, restored on exit.

    Frozen parameters are tracked for the duration so that gradients reach
    intermediate layers even for integer inputs (token ids)."""
    frozen = [p for p in model.parameters() if not p.requires_grad and p.is_floating_point()]
    try:
        for param in frozen:
            param.requires_grad_(True)
        with eval_mode(model), torch.enable_grad():
            yield
    finally:
        for param in frozen:
            param.requires_grad_(False)


def class_scores(output: object, score_fn: ScoreFn | None, batch: int) -> torch.Tensor:
    """The (B, num_classes) scores of a model output."""
    scores: object
    if score_fn is not None:
        scores = score_fn(output)
        if not isinstance(scores, torch.Tensor):
            raise InputError(f"score_fn must return a (B, num_classes) tensor, got {type(scores).__name__}")
    elif isinstance(output, torch.Tensor):
        scores = output
    else:
        scores = getattr(output, "logits", None)
    if not isinstance(scores, torch.Tensor):
        raise InputError(
            f"model returned {type(output).__name__} with no 'logits' tensor: pass score_fn=... "
            "mapping the output to (B, num_classes) scores"
        )
    if scores.dim() != 2 or scores.shape[0] != batch:
        raise InputError(f"scores must be (B={batch}, num_classes), got {tuple(scores.shape)}")
    return scores


def resolve_targets(
    scores: torch.Tensor, targets: Targets, *, whole: torch.Tensor | None = None
) -> torch.Tensor:
    """(B,) int64 target classes: the given ones, or each example's predicted class.

    ``whole``: every target of the batch this chunk comes from, range-checked here
    (the first forward tells the number of classes) so that a message lists them all."""
    batch, num_classes = scores.shape
    if whole is not None:
        check_target_range(whole, num_classes)
    chosen = check_targets(targets, batch)
    if chosen is None:
        return scores.detach().argmax(1)
    chosen = chosen.to(scores.device)
    check_target_range(chosen, num_classes)
    return chosen


def _chunks(inputs: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
    """(start, inputs) in chunks of ``CPU_CHUNK`` on CPU, whole elsewhere."""
    size = CPU_CHUNK if inputs.device.type == "cpu" else len(inputs)
    for start in range(0, len(inputs), size):
        yield start, inputs[start : start + size]


def target_scores(
    output: object,
    score_fn: ScoreFn | None,
    targets: Targets,
    batch: int,
    *,
    whole: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each example's (differentiable) score for its target class, and the targets.

    Non-finite scores are not checked here: callers check the whole batch's at once."""
    scores = class_scores(output, score_fn, batch)
    chosen = resolve_targets(scores, targets, whole=whole)
    return scores.gather(1, chosen[:, None]).squeeze(1), chosen


def _check_features(acts: torch.Tensor, layer: str, batch: int) -> None:
    if acts.dim() not in (3, 4, 5) or acts.shape[0] != batch or not acts.is_floating_point():
        raise InputError(
            f"layer '{layer}' outputs {acts.dtype} {tuple(acts.shape)}; CAM needs floating "
            f"(B={batch}, C, L), (B, C, H, W) or (B, C, T, H, W) feature maps"
        )


def _positions(acts: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(2, acts.dim()))


def _grad_cam(acts: torch.Tensor, grads: torch.Tensor, _scores: torch.Tensor) -> torch.Tensor:
    alpha = grads.mean(_positions(acts), keepdim=True)  # (B, K, 1, ...)
    return F.relu((alpha * acts).sum(1))


def _hires_cam(acts: torch.Tensor, grads: torch.Tensor, _scores: torch.Tensor) -> torch.Tensor:
    return F.relu((grads * acts).sum(1))


def _layer_cam(acts: torch.Tensor, grads: torch.Tensor, _scores: torch.Tensor) -> torch.Tensor:
    return F.relu((F.relu(grads) * acts).sum(1))


def _grad_cam_pp(acts: torch.Tensor, grads: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    scores = scores.detach()
    growth = torch.exp(scores)
    # NaN or inf scores are the model's, reported for the whole batch by the caller, not an overflow
    overflows = torch.isfinite(scores) & ~torch.isfinite(growth)
    if overflows.any():
        largest = float(scores[overflows].max())
        raise InputError(
            f"Grad-CAM++ uses exp(score) (paper eq. 19); a target score of {largest:.1f} "
            f"overflows {scores.dtype}: compute in float64 or explain a score_fn with smaller values"
        )
    g2 = grads.square()
    denom = 2 * g2 + acts.sum(_positions(acts), keepdim=True) * g2 * grads
    nonzero = denom != 0  # g = 0 gives 0/0: those positions carry no weight
    alpha = torch.where(nonzero, g2 / torch.where(nonzero, denom, torch.ones_like(denom)), 0.0)
    growth = growth.view(-1, *([1] * (acts.dim() - 1)))  # (B, 1, 1, ...)
    weights = (alpha * F.relu(growth * grads)).sum(_positions(acts), keepdim=True)  # (B, K, 1, ...)
    return F.relu((weights * acts).sum(1))


_GRADIENT_METHODS = {
    "gradcam": _grad_cam,
    "gradcam++": _grad_cam_pp,
    "hirescam": _hires_cam,
    "layercam": _layer_cam,
}


def _linear_weights(model: nn.Module, linear: str, channels: int) -> torch.Tensor:
    modules = dict(model.named_modules())
    if linear not in modules or linear == "":
        raise unknown("module", linear, [n for n, m in modules.items() if isinstance(m, nn.Linear)])
    head = modules[linear]
    if not isinstance(head, nn.Linear) or head.in_features != channels:
        raise ConfigError(
            f"module '{linear}' must be an nn.Linear with in_features={channels} (the layer's channels)"
        )
    return head.weight.detach()  # (num_classes, K)


@contextmanager
def _gradient_from(model: nn.Module, layer: str) -> Iterator[dict[str, torch.Tensor]]:
    """Autograd records only from ``layer`` on: its output is handed on as a fresh leaf.

    Gradient-based CAMs need d score / d A at one layer, nothing below it. With the
    parameters untracked, the forward up to the layer keeps no graph and no saved
    activations, which at batch 64 on a ResNet-50 is gigabytes and most of the time.
    The rest of the network gets a copy of the leaf, so in-place ops after the layer
    (ReLU(inplace=True)) cannot change the activations the map is made of: the same
    rule as :func:`attnlab.explain.capture.features`, which ``method="cam"`` uses.
    """
    modules = dict(model.named_modules())
    if layer not in modules or layer == "":
        raise unknown("module", layer, [n for n in modules if n])
    leaf: dict[str, torch.Tensor] = {}

    def hook(_module: nn.Module, _args: object, output: object) -> torch.Tensor:
        if not isinstance(output, torch.Tensor):
            raise InputError(f"module '{layer}' returns {type(output).__name__}, not a tensor")
        leaf["acts"] = output.detach().requires_grad_(True)
        return leaf["acts"].clone()

    tracked = [p for p in model.parameters() if p.requires_grad]
    handle = modules[layer].register_forward_hook(hook)
    try:
        for param in tracked:
            param.requires_grad_(False)
        with eval_mode(model), torch.enable_grad():
            yield leaf
    finally:
        handle.remove()
        for param in tracked:
            param.requires_grad_(True)


def _channels_last(inputs: torch.Tensor) -> torch.Tensor:
    """Images and videos in NHWC / NDHWC layout, the same values: oneDNN's CPU convolutions run a
    ResNet-50 forward about 1.3x faster on them (benchmarks/explain.py), as do cuDNN's under autocast."""
    formats = {4: torch.channels_last, 5: torch.channels_last_3d}
    fmt = formats.get(inputs.dim())
    return inputs if fmt is None else inputs.contiguous(memory_format=fmt)


def _gradient_maps(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str,
    method: str,
    targets: Targets,
    score_fn: ScoreFn | None,
    whole: torch.Tensor | None,
) -> Explanation:
    with _gradient_from(model, layer) as leaf:
        output = model(_channels_last(inputs))
        picked, chosen = target_scores(output, score_fn, targets, inputs.shape[0], whole=whole)
        if "acts" not in leaf:
            raise InputError(f"layer '{layer}' was not called by the model's forward")
        acts = leaf["acts"]
        _check_features(acts, layer, inputs.shape[0])
        (grads,) = torch.autograd.grad(picked.sum(), acts, allow_unused=True)
    if grads is None:
        raise InputError(f"layer '{layer}' does not influence the scores: pick a layer the head depends on")
    maps = _GRADIENT_METHODS[method](acts.detach(), grads, picked)
    return Explanation(maps, chosen, picked.detach())


def _cam_maps(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str,
    linear: str,
    targets: Targets,
    score_fn: ScoreFn | None,
    whole: torch.Tensor | None,
) -> Explanation:
    with eval_mode(model), torch.no_grad(), features(model, [layer]) as feats:
        picked, chosen = target_scores(model(inputs), score_fn, targets, inputs.shape[0], whole=whole)
        acts = feats[layer]
    _check_features(acts, layer, inputs.shape[0])
    weights = _linear_weights(model, linear, acts.shape[1])[chosen]  # (B, K)
    maps = (weights.view(*weights.shape, *([1] * (acts.dim() - 2))) * acts).sum(1)
    return Explanation(maps, chosen, picked)


def upsample(maps: torch.Tensor, size: Sequence[int], mode: str = "linear") -> torch.Tensor:
    """(B, *S) maps resized to (B, *size).

    ``mode``: "linear" ((bi/tri)linear by the maps' rank, align_corners=False) or
    "nearest" (captum's ``LayerAttribution.interpolate`` default)."""
    if mode not in UPSAMPLE_MODES:
        raise unknown("upsample mode", mode, UPSAMPLE_MODES)
    if len(size) != maps.dim() - 1 or any(int(s) <= 0 for s in size):
        raise InputError(f"upsample_to must be {maps.dim() - 1} positive sizes for maps {tuple(maps.shape)}")
    shape = tuple(int(s) for s in size)
    if mode == "nearest":
        resized = F.interpolate(maps[:, None], size=shape, mode="nearest")
    else:
        resized = F.interpolate(
            maps[:, None], size=shape, mode=_INTERPOLATION[maps.dim() - 1], align_corners=False
        )
    return resized[:, 0]  # (B, *size)


def min_max_normalize(maps: torch.Tensor) -> torch.Tensor:
    """Each map scaled to [0, 1]; a constant map becomes zeros rather than NaN."""
    flat = maps.flatten(1)  # (B, prod(S))
    low = flat.min(1, keepdim=True).values
    span = flat.max(1, keepdim=True).values - low
    safe = torch.where(span > 0, span, torch.ones_like(span))
    return torch.where(span > 0, (flat - low) / safe, torch.zeros_like(flat)).view_as(maps)


def class_activation_maps(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str,
    *,
    method: str = "gradcam",
    targets: Targets = None,
    score_fn: ScoreFn | None = None,
    linear: str | None = None,
    upsample_to: Sequence[int] | None = None,
    normalize: bool = False,
) -> Explanation:
    """Maps of ``method`` at ``layer`` for a batch ``inputs`` (``model(inputs)``).

    ``maps`` is (B, L), (B, H, W) or (B, T, H, W) at the layer's resolution, or
    ``upsample_to`` (one size per map dimension, e.g. ``inputs.shape[2:]``);
    ``normalize`` min-max scales each map to [0, 1]. ``linear`` names the GAP
    head's ``nn.Linear`` and is used by ``method="cam"`` only."""
    if method not in METHODS:
        raise unknown("CAM method", method, METHODS)
    if linear is not None and method != "cam":
        raise ConfigError(f"linear= is used by method='cam' only, not '{method}'")
    if linear is None and method == "cam":
        raise ConfigError("method='cam' needs linear=<name of the nn.Linear after global average pooling>")
    check_inputs(inputs, model, token_ids=True)
    chosen = check_targets(targets, len(inputs))  # once, before chunking: messages name the whole batch
    parts = []
    for start, chunk in _chunks(inputs):
        part = None if chosen is None else chosen[start : start + len(chunk)]
        parts.append(
            _cam_maps(model, chunk, layer, linear, part, score_fn, chosen)
            if linear is not None
            else _gradient_maps(model, chunk, layer, method, part, score_fn, chosen)
        )
    result = Explanation(*(torch.cat([getattr(p, f) for p in parts]) for f in ("maps", "targets", "scores")))
    check_finite(result.scores, "the model's target scores are NaN or inf")
    check_finite(result.maps, f"{method} maps are NaN or inf")
    maps = result.maps if upsample_to is None else upsample(result.maps, upsample_to)
    result.maps = min_max_normalize(maps) if normalize else maps
    return result
