"""Explanation-metric tables: every explanation method scored by every metric over a test set.

:func:`evaluate_explanations` makes each method's map for each example (at the
input's resolution, (B, H, W) for images and (B, T, H, W) for videos) and scores
it; :func:`explain_run` does that for a finished run's test split and writes
``explanations.json``, ``explanations.md`` and a figure.

Methods (``methods=``, by name; ``custom=`` adds your own):

* ``"abn"``: the model's own attention. ABN's ``attention`` M (B, 1, h, w); ST-ABN's
  spatial M_s (B, T', h, w) times its temporal M_t (B, T'), so that deletion over
  all frames ranks pixels of frames the model weighs more first (per-frame
  localisation metrics are unchanged by the per-frame factor). Resized
  (bi/tri)linearly to the input.
* ``"gradcam"``, ``"gradcam++"``, ``"hirescam"``, ``"layercam"``
  (:func:`attnlab.explain.cam.class_activation_maps`) at ``layer``, upsampled.
  The default layer is :func:`default_cam_layer`.
* ``"guided-gradcam"`` (:func:`attnlab.explain.guided.guided_grad_cam`), reduced
  over input channels by the largest absolute value (Simonyan et al.'s saliency
  convention). Needs ``nn.ReLU`` modules.
* ``"rollout"`` and ``"relevance"`` (Abnar & Zuidema; Chefer et al., see
  :mod:`attnlab.explain.attention_maps`) through the model's
  :class:`~attnlab.layers.attention.MultiHeadAttention` layers: the [CLS] row
  without the ``num_prefix_tokens`` prefix (model attribute, default 1) is the
  patch grid (``patch_size`` attribute, else the grid of the image's aspect),
  resized bilinearly to pixels, like the CAMs, so that the comparison is not
  confounded by the upsampling.
* ``"random"``: uniform noise from a generator seeded by ``seed``: the floor.
* ``"center"``: a centred Gaussian (sigma a quarter of each side, the same in
  every frame): the centre bias every method must also beat.

A method that does not apply to the model (rollout on a CNN, abn on a plain
ResNet, the CAM family when no module outputs feature maps) gets a
:class:`Score` with ``count == 0`` and the reason in ``note``, never an error.

Metrics (``metrics=``):

* ``"deletion"`` (lower is better) and ``"insertion"`` (higher): RISE AUCs
  (:mod:`attnlab.explain.metrics`), ``steps`` steps, for the same target class
  the map explains. Removed pixels become the ``deletion_baseline`` ("zeros" as
  in RISE; on normalised inputs that is the dataset mean, not black) and
  inserted ones go into the ``insertion_baseline`` (RISE's "blur").
  Videos: pixels of all frames are ranked together by their per-frame maps.
* ``"pointing"``: pointing game with a ``tolerance`` in pixels (default the paper's
  15 px at 224, scaled to the shorter side: 1.9 px at 28, 3.2 px at 48). A map
  with no single maximum (constant) is a miss, as in the paper.
* ``"energy"``: share of the (clamped non-negative) map's mass inside the boxes;
  an all-zero map has none and is left out (``skipped``).

Both localisation metrics need ``boxes`` in the batches, ``(x1, y1, x2, y2)``
pixels: images (B, 4) or (B, M, 4), videos (B, T, M, 4) (the actions dataset),
with an optional ``box_visible`` (B, M) or (B, T, M); or ``regions="foreground"``:
the pixels unlike the border colour (:mod:`attnlab.explain.regions`). For videos they are scored
per frame where an object is visible and averaged per example, so ``count`` is a
number of examples for every metric, and the std is over examples.

Targets: each example's predicted class (RISE's protocol), or its ``label``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attnlab.errors import ConfigError, InputError, RunDirError, unknown
from attnlab.explain.attention_maps import attention_relevance, attention_rollout
from attnlab.explain.cam import (
    METHODS as CAM_METHODS,
)
from attnlab.explain.cam import (
    ScoreFn,
    class_activation_maps,
    class_scores,
    eval_mode,
    upsample,
)
from attnlab.explain.guided import guided_grad_cam
from attnlab.explain.metrics import (
    BASELINES,
    deletion,
    energy_in_region,
    insertion,
    pointing_game,
)
from attnlab.explain.regions import REGIONS, box_regions, foreground_regions
from attnlab.layers.attention import MultiHeadAttention

METHODS = (
    "abn",
    "gradcam",
    "gradcam++",
    "hirescam",
    "layercam",
    "guided-gradcam",
    "rollout",
    "relevance",
    "random",
    "center",
)
METRICS = ("deletion", "insertion", "pointing", "energy")
TARGETS = ("predicted", "label")
BETTER = {"deletion": "lower", "insertion": "higher", "pointing": "higher", "energy": "higher"}
_LOCALISATION = ("pointing", "energy")
MapFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]  # (model, inputs, targets) -> maps


@dataclass(frozen=True)
class Score:
    """One method's score on one metric: mean and sample std over ``count`` examples."""

    mean: float
    std: float
    count: int
    skipped: int = 0  # examples without a value (no visible box, an all-zero map for energy)
    note: str = ""  # why there is no value at all: the method or the metric does not apply

    @property
    def applicable(self) -> bool:
        return not self.note

    @classmethod
    def not_applicable(cls, reason: str) -> Score:
        return cls(math.nan, math.nan, 0, note=reason)

    @classmethod
    def of(cls, values: torch.Tensor) -> Score:
        """Summary of per-example values; NaN entries are counted as ``skipped``."""
        finite = values[torch.isfinite(values)].double()
        n = int(finite.numel())
        mean = float(finite.mean()) if n else math.nan
        std = float(finite.std()) if n > 1 else (0.0 if n else math.nan)
        return cls(mean, std, n, skipped=int(values.numel()) - n)

    def as_dict(self) -> dict[str, float | int | str | None]:
        """JSON-ready: NaN becomes None."""
        return {
            "mean": None if math.isnan(self.mean) else self.mean,
            "std": None if math.isnan(self.std) else self.std,
            "count": self.count,
            "skipped": self.skipped,
            "note": self.note,
        }


class NotApplicable(Exception):
    """Raised by a map function when its method does not apply to the model (the reason)."""


# ---------------------------------------------------------------- the CAM target layer


def _top_level(model: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Direct children; containers that are never called themselves count through their children."""
    for name, child in model.named_children():
        if isinstance(child, nn.ModuleList | nn.ModuleDict):
            yield from _top_level(child, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", child


def default_cam_layer(model: nn.Module, inputs: torch.Tensor) -> str:
    """The last direct child of ``model`` to output a tensor of rank >= 4 in ``model(inputs)``.

    "Last" in the order the calls finish. ``nn.ModuleList`` / ``nn.ModuleDict`` are
    never called, so their members stand in for them (ResNet's ``stages.2``). For ABN
    this is ``perception_stage``, for a ResNet its last stage, for a ViT its patch
    embedding. ConfigError when no such module runs (pass a layer name)."""
    finished: list[str] = []

    def hook_for(name: str) -> Callable[[nn.Module, object, object], None]:
        def hook(_module: nn.Module, _args: object, output: object) -> None:
            if isinstance(output, torch.Tensor) and output.dim() >= 4:
                finished.append(name)

        return hook

    handles = [module.register_forward_hook(hook_for(name)) for name, module in _top_level(model)]
    try:
        with eval_mode(model), torch.no_grad():
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    if not finished:
        raise ConfigError(
            f"no direct child of {type(model).__name__} outputs (B, C, H, W) or (B, C, T, H, W) feature "
            "maps; pass layer=<module name> for the CAM methods"
        )
    return finished[-1]


# ---------------------------------------------------------------- maps


@dataclass
class _Context:
    """What every batch's maps need: resolved once, on the first batch."""

    model: nn.Module
    layer: str | None
    layer_reason: str  # why there is no layer
    attention: list[str]  # self-attention layers for rollout/relevance
    score_fn: ScoreFn | None
    generator: torch.Generator
    custom: Mapping[str, MapFn]


def _context(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str | None,
    score_fn: ScoreFn | None,
    seed: int,
    custom: Mapping[str, MapFn],
) -> _Context:
    reason = ""
    if layer is None:
        try:
            layer = default_cam_layer(model, inputs[:1])
        except ConfigError as err:
            reason = str(err)
    elif layer not in dict(model.named_modules()) or layer == "":
        raise unknown("module", layer, [n for n, _ in model.named_modules() if n])
    attention = [n for n, m in model.named_modules() if isinstance(m, MultiHeadAttention)]
    return _Context(model, layer, reason, attention, score_fn, torch.Generator().manual_seed(seed), custom)


def _abn_maps(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    with eval_mode(model), torch.no_grad():
        out = model(inputs)
    size = inputs.shape[2:]
    attention = getattr(out, "attention", None)
    if isinstance(attention, torch.Tensor) and attention.dim() == 4 and inputs.dim() == 4:
        return upsample(attention[:, 0].float(), size)  # (B, H, W)
    spatial, temporal = getattr(out, "spatial", None), getattr(out, "temporal", None)
    if isinstance(spatial, torch.Tensor) and spatial.dim() == 4 and inputs.dim() == 5:
        maps = upsample(spatial.float(), size)  # (B, T, H, W)
        if isinstance(temporal, torch.Tensor) and temporal.dim() == 2:
            weights = upsample(temporal.float(), size[:1])  # (B, T)
            maps = maps * weights[:, :, None, None]
        return maps
    raise NotApplicable(
        f"{type(model).__name__}'s output has no attention map (ABN's 'attention' or ST-ABN's 'spatial')"
    )


def _token_grid(model: nn.Module, inputs: torch.Tensor, patches: int) -> tuple[int, int]:
    if inputs.dim() != 4:
        raise NotApplicable("attention maps of video tokens are not mapped back to pixels yet")
    height, width = inputs.shape[2], inputs.shape[3]
    patch = getattr(model, "patch_size", None)
    if isinstance(patch, int) and patch > 0:
        rows, cols = height // patch, width // patch
    else:
        rows = max(1, round(math.sqrt(patches * height / width)))
        cols = patches // rows
    if rows * cols != patches:
        raise NotApplicable(
            f"{patches} tokens after the prefix do not form a patch grid of a {height}x{width} image"
        )
    return rows, cols


def _tokens_to_pixels(model: nn.Module, inputs: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """(B, N, N) token relevance -> the [CLS] row over the patches, resized to (B, H, W)."""
    prefix = int(getattr(model, "num_prefix_tokens", 1))
    row = relevance[:, 0, prefix:]  # (B, h * w), row-major patches
    rows, cols = _token_grid(model, inputs, row.shape[1])
    return upsample(row.reshape(-1, rows, cols).float(), inputs.shape[2:])  # (B, H, W)


def _attention_maps(ctx: _Context, method: str, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if not ctx.attention:
        raise NotApplicable(f"{type(ctx.model).__name__} has no self-attention (MultiHeadAttention) layers")
    try:
        if method == "rollout":
            joint = attention_rollout(ctx.model, inputs, layers=ctx.attention)
        else:
            joint = attention_relevance(
                ctx.model, inputs, targets=targets, score_fn=ctx.score_fn, layers=ctx.attention
            ).maps
    except (ConfigError, InputError) as err:  # cross-attention or recurrent layers: no chain
        raise NotApplicable(str(err)) from None
    return _tokens_to_pixels(ctx.model, inputs, joint)


def _cam_maps(ctx: _Context, method: str, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if ctx.layer is None:
        raise NotApplicable(ctx.layer_reason)
    if method != "guided-gradcam":
        return class_activation_maps(
            ctx.model,
            inputs,
            ctx.layer,
            method=method,
            targets=targets,
            score_fn=ctx.score_fn,
            upsample_to=inputs.shape[2:],
        ).maps
    if not any(isinstance(m, nn.ReLU) for m in ctx.model.modules()):
        raise NotApplicable(f"{type(ctx.model).__name__} has no nn.ReLU modules to guide")
    guided = guided_grad_cam(ctx.model, inputs, ctx.layer, targets=targets, score_fn=ctx.score_fn).maps
    return guided.abs().amax(1)  # (B, *S)


def center_maps(batch: int, size: Sequence[int], device: torch.device | None = None) -> torch.Tensor:
    """(B, *size) centred Gaussians, sigma a quarter of each of the last two sides (frames alike)."""
    axes = list(size)[-2:]
    grids = [torch.arange(n, dtype=torch.float32, device=device) for n in axes]
    parts = [torch.exp(-0.5 * ((g - (n - 1) / 2) / (n / 4)) ** 2) for g, n in zip(grids, axes, strict=True)]
    bump = parts[0] if len(parts) == 1 else parts[0][:, None] * parts[1][None, :]  # (H, W)
    return bump.expand(batch, *size).clone()


def _map(ctx: _Context, method: str, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if method in ctx.custom:
        return ctx.custom[method](ctx.model, inputs, targets)
    if method == "abn":
        return _abn_maps(ctx.model, inputs)
    if method in CAM_METHODS or method == "guided-gradcam":
        return _cam_maps(ctx, method, inputs, targets)
    if method in ("rollout", "relevance"):
        return _attention_maps(ctx, method, inputs, targets)
    if method == "random":
        noise = torch.rand(inputs.shape[0], *inputs.shape[2:], generator=ctx.generator)
        return noise.to(inputs.device)
    return center_maps(inputs.shape[0], inputs.shape[2:], inputs.device)


def _check_methods(methods: Sequence[str], metrics: Sequence[str], custom: Mapping[str, MapFn]) -> None:
    known = (*METHODS, *custom)
    for method in methods:
        if method not in known:
            raise unknown("explanation method", method, known)
    for metric in metrics:
        if metric not in METRICS:
            raise unknown("explanation metric", metric, METRICS)
    if not methods or not metrics:
        raise ConfigError("give at least one method and one metric")


def _check_inputs(inputs: torch.Tensor) -> None:
    if not isinstance(inputs, torch.Tensor):
        raise InputError(f"a batch's 'input' must be a tensor, got {type(inputs).__name__}")
    if not inputs.is_floating_point() or inputs.dim() not in (3, 4, 5):
        raise InputError(
            "explanation metrics need floating (B, C, L), (B, C, H, W) or (B, C, T, H, W) inputs "
            f"(token ids cannot be perturbed pixel by pixel), got {inputs.dtype} {tuple(inputs.shape)}"
        )


def explanation_maps(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    methods: Sequence[str] = METHODS,
    layer: str | None = None,
    targets: torch.Tensor | None = None,
    score_fn: ScoreFn | None = None,
    seed: int = 0,
    custom: Mapping[str, MapFn] | None = None,
) -> dict[str, torch.Tensor | str]:
    """Each method's (B, *S) maps at the input's resolution, or why it does not apply.

    ``targets`` default to the predicted classes; arguments as :func:`evaluate_explanations`."""
    custom = dict(custom or {})
    _check_methods(methods, METRICS, custom)
    _check_inputs(inputs)
    ctx = _context(model, inputs, layer, score_fn, seed, custom)
    chosen = _predicted(model, inputs, score_fn) if targets is None else targets
    out: dict[str, torch.Tensor | str] = {}
    for method in methods:
        try:
            out[method] = _map(ctx, method, inputs, chosen).detach()
        except NotApplicable as reason:
            out[method] = str(reason)
    return out


# ---------------------------------------------------------------- metrics


def _per_example(
    score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], maps: torch.Tensor, regions: torch.Tensor
) -> torch.Tensor:
    """(B,) mean of ``score`` over each example's images or frames with a non-empty region; NaN if none."""
    batch = maps.shape[0]
    units, masks = maps.reshape(-1, *maps.shape[-2:]), regions.reshape(-1, *regions.shape[-2:])  # (U, H, W)
    owner = torch.arange(batch, device=maps.device).repeat_interleave(units.shape[0] // batch)  # (U,)
    keep = masks.flatten(1).any(1)
    out = torch.full((batch,), math.nan, dtype=torch.float64, device=maps.device)
    if not keep.any():
        return out
    values = score(units[keep], masks[keep]).double()  # (U',)
    owner = owner[keep][torch.isfinite(values)]
    values = values[torch.isfinite(values)]
    sums = torch.zeros(batch, dtype=torch.float64, device=maps.device).index_add_(0, owner, values)
    counts = torch.zeros(batch, dtype=torch.float64, device=maps.device).index_add_(
        0, owner, torch.ones_like(values)
    )
    return torch.where(counts > 0, sums / counts.clamp(min=1), out)


@dataclass(frozen=True)
class _Protocol:
    steps: int
    batch_size: int
    baselines: dict[str, str]  # deletion / insertion -> a baseline of attnlab.explain.metrics
    tolerance: float | None
    score_fn: ScoreFn | None


def _metric(
    name: str,
    model: nn.Module,
    inputs: torch.Tensor,
    maps: torch.Tensor,
    targets: torch.Tensor,
    regions: torch.Tensor | None,
    protocol: _Protocol,
) -> torch.Tensor:
    """(B,) per-example values of metric ``name`` (NaN: no value)."""
    maps = maps.float()
    if name in ("deletion", "insertion"):
        curve = deletion if name == "deletion" else insertion
        return curve(
            model,
            inputs,
            maps.to(inputs.dtype),
            steps=protocol.steps,
            baseline=protocol.baselines[name],
            targets=targets,
            score_fn=protocol.score_fn,
            batch_size=protocol.batch_size,
        ).auc
    assert regions is not None  # localisation metrics run only with regions (see evaluate_explanations)
    if name == "energy":
        return _per_example(energy_in_region, maps.clamp(min=0), regions)
    side = min(inputs.shape[-2:])
    tolerance = 15.0 * side / 224 if protocol.tolerance is None else protocol.tolerance

    def hits(units: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return pointing_game(units, masks, tolerance=tolerance).nan_to_num(0.0)  # no maximum: a miss

    return _per_example(hits, maps, regions)


# ---------------------------------------------------------------- evaluation


def _chunks(
    batches: Iterable[Mapping[str, torch.Tensor]], limit: int | None, batch_size: int
) -> Iterator[dict[str, torch.Tensor]]:
    """At most ``limit`` examples, in pieces of at most ``batch_size``."""
    remaining = math.inf if limit is None else limit
    for batch in batches:
        if not isinstance(batch, Mapping) or not isinstance(batch.get("input"), torch.Tensor):
            raise InputError("batches must be mappings with an 'input' tensor (as attnlab's datasets yield)")
        total = batch["input"].shape[0]
        for start in range(0, total, batch_size):
            if remaining <= 0:
                return
            stop = int(min(total, start + batch_size, start + remaining))
            yield {k: v[start:stop] for k, v in batch.items() if isinstance(v, torch.Tensor)}
            remaining -= stop - start


def _predicted(model: nn.Module, inputs: torch.Tensor, score_fn: ScoreFn | None) -> torch.Tensor:
    with eval_mode(model), torch.no_grad():
        return class_scores(model(inputs), score_fn, inputs.shape[0]).argmax(1)


def _targets(
    model: nn.Module, chunk: Mapping[str, torch.Tensor], inputs: torch.Tensor, mode: str, fn: ScoreFn | None
) -> torch.Tensor:
    if mode == "predicted":
        return _predicted(model, inputs, fn)
    if "label" not in chunk:
        raise InputError("targets='label' needs a 'label' in every batch")
    return chunk["label"].to(inputs.device).long()


def _device(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _no_regions(chunk: Mapping[str, torch.Tensor], inputs: torch.Tensor, regions: str) -> str:
    """Why the localisation metrics cannot be scored on these batches ("" if they can)."""
    if inputs.dim() == 3:
        return "1D signals have no object regions"
    if regions == "boxes" and "boxes" not in chunk:
        return "the data has no object boxes (try regions 'foreground' for objects on a plain background)"
    return ""


def _regions(chunk: Mapping[str, torch.Tensor], inputs: torch.Tensor, regions: str) -> torch.Tensor:
    """(B, *S) bool: where the objects of ``inputs`` are."""
    if regions == "foreground":
        return foreground_regions(inputs)
    if "boxes" not in chunk:
        raise InputError("pointing and energy need 'boxes' in every batch (the first batch had them)")
    return box_regions(chunk["boxes"], chunk.get("box_visible"), inputs.shape[2:])


def evaluate_explanations(
    model: nn.Module,
    batches: Iterable[Mapping[str, torch.Tensor]],
    *,
    methods: Sequence[str] = METHODS,
    metrics: Sequence[str] = METRICS,
    layer: str | None = None,
    limit: int | None = 100,
    targets: str = "predicted",
    steps: int = 50,
    batch_size: int = 32,
    tolerance: float | None = None,
    deletion_baseline: str = "zeros",
    insertion_baseline: str = "blur",
    seed: int = 0,
    score_fn: ScoreFn | None = None,
    custom: Mapping[str, MapFn] | None = None,
    regions: str = "boxes",
) -> dict[str, dict[str, Score]]:
    """``result[method][metric]``: a :class:`Score` over the first ``limit`` examples of ``batches``.

    ``batches`` yield dicts with ``input`` (and ``label``, ``boxes``,
    ``box_visible`` where present), as attnlab's data loaders do; they are
    explained ``batch_size`` examples at a time (also the perturbation batch).
    ``layer``: the CAM target layer (default :func:`default_cam_layer`).
    ``targets``: "predicted" or "label". ``steps``: points of the deletion and
    insertion curves. ``tolerance``: pointing-game pixels (default 15 at 224,
    scaled). ``deletion_baseline`` / ``insertion_baseline``: what removed pixels
    become, "zeros", "blur" or "mean" (RISE: zeros and blur; on normalised inputs
    zero is the dataset mean, not black). ``seed``: the "random" method's. ``custom``: more methods by name,
    ``fn(model, inputs, targets) -> (B, *S)`` maps at the input's resolution. ``regions``: what the
    localisation metrics score against, the batches' "boxes" or the inputs' "foreground"
    (:func:`~attnlab.explain.regions.foreground_regions`, for objects on a plain background)."""
    custom = dict(custom or {})
    _check_methods(methods, metrics, custom)
    if targets not in TARGETS:
        raise unknown("targets", targets, TARGETS)
    if limit is not None and (isinstance(limit, bool) or limit < 1):
        raise ConfigError(f"limit must be a positive number of examples, got {limit!r}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    for baseline in (deletion_baseline, insertion_baseline):
        if baseline not in BASELINES:
            raise unknown("baseline", baseline, BASELINES)
    if regions not in REGIONS:
        raise unknown("regions", regions, REGIONS)
    baselines = {"deletion": deletion_baseline, "insertion": insertion_baseline}
    protocol = _Protocol(steps, batch_size, baselines, tolerance, score_fn)
    device = _device(model)
    ctx: _Context | None = None
    skipped_metrics: dict[str, str] = {}
    localise = False  # score pointing and energy (set from the first batch)
    failed: dict[str, str] = {}  # method -> why it does not apply
    values: dict[str, dict[str, list[torch.Tensor]]] = {m: {k: [] for k in metrics} for m in methods}
    for chunk in _chunks(batches, limit, batch_size):
        inputs = chunk["input"].to(device)
        _check_inputs(inputs)
        if ctx is None:
            ctx = _context(model, inputs, layer, score_fn, seed, custom)
            why = _no_regions(chunk, inputs, regions)
            skipped_metrics = {k: why for k in metrics if k in _LOCALISATION and why}
            localise = not why and any(k in _LOCALISATION for k in metrics)
        chosen = _targets(model, chunk, inputs, targets, score_fn)
        masks = _regions(chunk, inputs, regions).to(device) if localise else None
        for method in methods:
            if method in failed:
                continue
            try:
                maps = _map(ctx, method, inputs, chosen).detach()
            except NotApplicable as reason:
                failed[method] = str(reason)
                continue
            for metric in metrics:
                if metric not in skipped_metrics:
                    values[method][metric].append(
                        _metric(metric, model, inputs, maps, chosen, masks, protocol).cpu()
                    )
    if ctx is None:
        raise InputError("the batches held no examples")
    return _summarise(methods, metrics, values, failed, skipped_metrics)


def _summarise(
    methods: Sequence[str],
    metrics: Sequence[str],
    values: dict[str, dict[str, list[torch.Tensor]]],
    failed: dict[str, str],
    skipped_metrics: dict[str, str],
) -> dict[str, dict[str, Score]]:
    result: dict[str, dict[str, Score]] = {}
    for method in methods:
        result[method] = {}
        for metric in metrics:
            if method in failed:
                result[method][metric] = Score.not_applicable(failed[method])
            elif metric in skipped_metrics:
                result[method][metric] = Score.not_applicable(skipped_metrics[metric])
            else:
                result[method][metric] = Score.of(torch.cat(values[method][metric]))
    return result


# ---------------------------------------------------------------- reports


def markdown_table(results: Mapping[str, Mapping[str, Score]], *, digits: int = 3) -> str:
    """Rows = methods, columns = metrics (with which way is better), ``mean ± std``, and n."""
    metrics = list(next(iter(results.values())))
    header = ["method", *(f"{m} ({'↓' if BETTER[m] == 'lower' else '↑'})" for m in metrics), "n"]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    for method, row in results.items():
        cells, counts = [], {s.count for s in row.values() if s.applicable}
        for metric in metrics:
            score = row[metric]
            if not score.applicable:
                cells.append("n/a")
                continue
            cell = f"{score.mean:.{digits}f} ± {score.std:.{digits}f}" if score.count else "–"
            cells.append(cell + (f" (n={score.count})" if len(counts) > 1 else ""))
        n = str(max(counts)) if counts else "0"
        lines.append("| " + " | ".join([method, *cells, n]) + " |")
    notes = _not_applicable_notes(results)
    return "\n".join([*lines, *(["", *notes] if notes else [])]) + "\n"


def _not_applicable_notes(results: Mapping[str, Mapping[str, Score]]) -> list[str]:
    """One line per reason, naming whole methods, whole metric columns, then single cells."""
    methods = list(results)
    metrics = list(next(iter(results.values())))
    by_reason: dict[str, set[tuple[str, str]]] = {}
    for method, row in results.items():
        for metric, score in row.items():
            if not score.applicable:
                by_reason.setdefault(score.note, set()).add((method, metric))
    lines = []
    for reason, cells in by_reason.items():
        whole = [m for m in methods if all((m, k) in cells for k in metrics)]
        rest = {(m, k) for m, k in cells if m not in whole}
        scored = [m for m in methods if any(results[m][k].applicable for k in metrics)]
        columns = [k for k in metrics if scored and all((m, k) in rest for m in scored)]
        single = [f"{m} {k}" for m in methods for k in metrics if (m, k) in rest and k not in columns]
        names = whole + [f"{k} (every method)" for k in columns] + single
        lines.append(f"- n/a for {', '.join(names)}: {reason}")
    return lines


def explain_run(
    run_dir: str | Path,
    *,
    methods: Sequence[str] = METHODS,
    metrics: Sequence[str] = METRICS,
    limit: int = 100,
    out: str | Path | None = None,
    layer: str | None = None,
    targets: str = "predicted",
    steps: int = 50,
    batch_size: int = 32,
    deletion_baseline: str = "zeros",
    insertion_baseline: str = "blur",
    figure_examples: int = 6,
    device: str | None = None,
    regions: str = "boxes",
) -> Path:
    """Explain a finished run's final weights on its test split; returns ``explanations.md``'s path.

    Writes ``explanations.json``, ``explanations.md`` (the table of
    :func:`markdown_table`) and ``figures/explanations.png`` (``figure_examples``
    test examples, each method's map; a video's middle frame) into the run folder,
    or into ``out``, replacing earlier ones. ``device``: default CUDA when
    available. Other arguments as :func:`evaluate_explanations`."""
    from attnlab.runs import rundir
    from attnlab.runs.spec import resolve
    from attnlab.runs.weights import load_initial_weights
    from attnlab.train.engine import build

    _check_methods(methods, metrics, {})  # before the model and the data are built
    if targets not in TARGETS:
        raise unknown("targets", targets, TARGETS)
    if regions not in REGIONS:
        raise unknown("regions", regions, REGIONS)
    run = rundir.existing(Path(run_dir))
    if not run.weights.is_file():
        raise RunDirError(f"{run.path} has no final weights {run.weights.name} (unfinished run?)")
    spec = resolve(run.config, [])
    task, data = build(spec)
    model = task.model
    load_initial_weights(model, run.weights)
    model.to(torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))).eval()
    loader = data.test_dataloader()
    results = evaluate_explanations(
        model,
        loader,
        methods=methods,
        metrics=metrics,
        layer=layer,
        limit=limit,
        targets=targets,
        steps=steps,
        batch_size=batch_size,
        deletion_baseline=deletion_baseline,
        insertion_baseline=insertion_baseline,
        regions=regions,
    )
    folder = Path(out) if out is not None else run.path
    first = next(_chunks(loader, max(1, figure_examples), max(1, figure_examples)))
    inputs = first["input"].to(_device(model))
    uses_layer = any(m in CAM_METHODS or m == "guided-gradcam" for m in methods)
    used_layer = (layer or _layer_name(model, inputs)) if uses_layer else None
    chosen = _targets(model, first, inputs, targets, None)
    figure = _figure(model, first, inputs, chosen, methods, layer, folder / "figures" / "explanations.png")
    info = {
        "run": str(run.path),
        "model": spec.model_name,
        "data": spec.data_name,
        "split": "test",
        "weights": rundir.WEIGHTS_FILE,
        "examples": max((s.count + s.skipped for r in results.values() for s in r.values()), default=0),
        "targets": targets,
        "cam_layer": used_layer,
        "steps": steps,
        "baselines": {"deletion": deletion_baseline, "insertion": insertion_baseline},
        "regions": regions,
    }
    return _write_reports(folder, info, results, figure)


def _layer_name(model: nn.Module, inputs: torch.Tensor) -> str | None:
    try:
        return default_cam_layer(model, inputs[:1])
    except ConfigError:
        return None


def _figure(
    model: nn.Module,
    chunk: Mapping[str, torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    methods: Sequence[str],
    layer: str | None,
    path: Path,
) -> Path | None:
    from attnlab.explain.cam import min_max_normalize
    from attnlab.explain.render import overlay_grid

    maps = explanation_maps(model, inputs, methods=methods, layer=layer, targets=targets)
    shown = {name: m for name, m in maps.items() if isinstance(m, torch.Tensor)}
    if not shown or inputs.dim() not in (4, 5):
        return None
    images = inputs if inputs.dim() == 4 else inputs[:, :, inputs.shape[2] // 2]  # video: middle frame
    if inputs.dim() == 5:
        shown = {name: m[:, m.shape[1] // 2] for name, m in shown.items()}
    shown = {name: min_max_normalize(m.float().cpu()) for name, m in shown.items()}
    predicted = _predicted(model, inputs, None).cpu()
    labels = chunk.get("label")
    titles = [
        f"pred {int(p)}" + ("" if labels is None else f" / true {int(labels[i])}")
        for i, p in enumerate(predicted)
    ]
    return overlay_grid(images[:, :3].cpu(), shown, path, titles=titles)


def _write_reports(
    folder: Path, info: dict[str, Any], results: Mapping[str, Mapping[str, Score]], figure: Path | None
) -> Path:
    from attnlab.runs.checkpoint_io import atomic_write

    baselines = info["baselines"]
    layer = f" CAM layer: `{info['cam_layer']}`." if info["cam_layer"] else ""
    payload = {**info, "results": {m: {k: s.as_dict() for k, s in row.items()} for m, row in results.items()}}
    text = json.dumps(payload, indent=2, ensure_ascii=False)
    atomic_write(folder / "explanations.json", lambda f: f.write(text.encode()))
    lines = [
        f"# Explanation metrics: {info['model']} on {info['data']} ({info['split']} split)",
        "",
        f"Run `{info['run']}`, final weights; {info['examples']} examples; maps explain the "
        f"{info['targets']} class.{layer} Deletion and insertion AUCs over "
        f"{info['steps']} steps (RISE), baselines {baselines['deletion']} and {baselines['insertion']}; "
        "mean ± std over examples.",
        "",
        markdown_table(results),
    ]
    if figure is not None:
        lines += [f"![Each method's map on test examples]({figure.relative_to(folder).as_posix()})", ""]
    report = folder / "explanations.md"
    atomic_write(report, lambda f: f.write("\n".join(lines).encode()))
    return report
