"""Explanation metrics over a test set: every method's maps scored by every metric.

:func:`evaluate_explanations` makes each method's map for each example with
:func:`attnlab.explain.maps.explanation_maps`'s methods (at the input's
resolution) and scores it; a method that does not apply to the model gets a
:class:`Score` with ``count == 0`` and the reason in ``note``, never an error, and
so does a method that fails on these inputs (an :class:`~attnlab.errors.AttnlabError`
or a ``RuntimeError`` while making its maps, e.g. Grad-CAM++'s ``exp(score)``
overflowing float32): then ``failed`` is set, and the other methods are still scored.
:mod:`attnlab.explain.tables` writes the results as a table.

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

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import AttnlabError, ConfigError, InputError, unknown
from attnlab.explain._checks import check_finite
from attnlab.explain.cam import ScoreFn
from attnlab.explain.maps import (
    METHODS,
    MapContext,
    MapFn,
    NotApplicable,
    check_inputs,
    check_methods,
    make_context,
    method_maps,
    predicted_classes,
)
from attnlab.explain.metrics import (
    BASELINES,
    deletion,
    energy_in_region,
    insertion,
    pointing_game,
)
from attnlab.explain.regions import REGIONS, box_regions, foreground_regions

METRICS = ("deletion", "insertion", "pointing", "energy")
TARGETS = ("predicted", "label")
BETTER = {"deletion": "lower", "insertion": "higher", "pointing": "higher", "energy": "higher"}
_LOCALISATION = ("pointing", "energy")


@dataclass(frozen=True)
class Score:
    """One method's score on one metric: mean and sample std over ``count`` examples."""

    mean: float
    std: float
    count: int
    skipped: int = 0  # examples without a value (no visible box, an all-zero map for energy)
    note: str = ""  # why there is no value at all: the method or the metric does not apply, or failed
    failed: bool = False  # the method applies but making its maps raised (``note`` says why)

    @property
    def applicable(self) -> bool:
        return not self.note

    @classmethod
    def not_applicable(cls, reason: str) -> Score:
        return cls(math.nan, math.nan, 0, note=reason)

    @classmethod
    def failure(cls, reason: str) -> Score:
        return cls(math.nan, math.nan, 0, note=reason, failed=True)

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
            "failed": self.failed,
        }


def check_metrics(metrics: Sequence[str]) -> None:
    """Every name is a metric, and there is at least one."""
    for metric in metrics:
        if metric not in METRICS:
            raise unknown("explanation metric", metric, METRICS)
    if not metrics:
        raise ConfigError("give at least one metric")


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


def _single_precision(maps: torch.Tensor) -> torch.Tensor:
    """float32 maps; wider ones are first scaled by each example's largest magnitude.

    Every metric is invariant to a positive scale per example (ranks, the argmax,
    shares of mass), and float64 maps (Grad-CAM++'s ``exp(score)``) can exceed float32."""
    if maps.dtype in (torch.float32, torch.float16, torch.bfloat16):
        return maps.float()
    peak = maps.abs().flatten(1).amax(1).clamp_min(torch.finfo(maps.dtype).tiny)  # (B,)
    return (maps / peak.view(-1, *([1] * (maps.dim() - 1)))).float()


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
    maps = _single_precision(maps)
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


def example_chunks(
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


def batch_targets(
    model: nn.Module,
    chunk: Mapping[str, torch.Tensor],
    inputs: torch.Tensor,
    mode: str,
    fn: ScoreFn | None,
    *,
    offset: int = 0,
) -> torch.Tensor:
    """(B,) the classes to explain; the model's scores are checked to be finite in both modes."""
    predicted = predicted_classes(model, inputs, fn, offset=offset)
    if mode == "predicted":
        return predicted
    if "label" not in chunk:
        raise InputError("targets='label' needs a 'label' in every batch")
    return chunk["label"].to(inputs.device).long()


def model_device(model: nn.Module) -> torch.device:
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
    ``layer``: the CAM target layer (default :func:`~attnlab.explain.maps.default_cam_layer`).
    ``targets``: "predicted" or "label". ``steps``: points of the deletion and
    insertion curves. ``tolerance``: pointing-game pixels (default 15 at 224,
    scaled). ``deletion_baseline`` / ``insertion_baseline``: what removed pixels
    become, "zeros", "blur" or "mean" (RISE: zeros and blur; on normalised inputs
    zero is the dataset mean, not black). ``seed``: the "random" method's. ``custom``: more methods by name,
    ``fn(model, inputs, targets) -> (B, *S)`` maps at the input's resolution. ``regions``: what the
    localisation metrics score against, the batches' "boxes" or the inputs' "foreground"
    (:func:`~attnlab.explain.regions.foreground_regions`, for objects on a plain background)."""
    custom = dict(custom or {})
    check_methods(methods, custom)
    check_metrics(metrics)
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
    device = model_device(model)
    ctx: MapContext | None = None
    skipped_metrics: dict[str, str] = {}
    localise = False  # score pointing and energy (set from the first batch)
    failed: dict[str, Score] = {}  # method -> why it does not apply or failed
    values: dict[str, dict[str, list[torch.Tensor]]] = {m: {k: [] for k in metrics} for m in methods}
    seen = 0  # examples before this chunk: messages name examples of the whole stream
    for chunk in example_chunks(batches, limit, batch_size):
        inputs = chunk["input"].to(device)
        check_inputs(inputs, model, offset=seen)
        if ctx is None:
            ctx = make_context(model, inputs, layer, score_fn, seed, custom)
            why = _no_regions(chunk, inputs, regions)
            skipped_metrics = {k: why for k in metrics if k in _LOCALISATION and why}
            localise = not why and any(k in _LOCALISATION for k in metrics)
        chosen = batch_targets(model, chunk, inputs, targets, score_fn, offset=seen)
        masks = _regions(chunk, inputs, regions).to(device) if localise else None
        for method in methods:
            if method in failed:
                continue
            maps = _method_maps(ctx, method, inputs, chosen, seen, failed)
            if maps is None:
                continue
            for metric in metrics:
                if metric not in skipped_metrics:
                    values[method][metric].append(
                        _metric(metric, model, inputs, maps, chosen, masks, protocol).cpu()
                    )
        seen += len(inputs)
    if ctx is None:
        raise InputError("the batches held no examples")
    return _summarise(methods, metrics, values, failed, skipped_metrics)


def _method_maps(
    ctx: MapContext,
    method: str,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    offset: int,
    failed: dict[str, Score],
) -> torch.Tensor | None:
    """The method's finite maps, or None with the reason recorded in ``failed``."""
    try:
        maps = method_maps(ctx, method, inputs, targets).detach()
        check_finite(maps, f"{method} maps are NaN or inf", offset=offset)
    except NotApplicable as reason:
        failed[method] = Score.not_applicable(str(reason))
        return None
    except AttnlabError as err:  # this method on these inputs (an overflow, NaN maps): the others go on
        failed[method] = Score.failure(_one_line(str(err)))
        return None
    except RuntimeError as err:  # PyTorch's own (out of memory, a shape the method cannot take)
        failed[method] = Score.failure(_one_line(f"{type(err).__name__}: {err}"))
        return None
    return maps


def _one_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no reason given"


def _summarise(
    methods: Sequence[str],
    metrics: Sequence[str],
    values: dict[str, dict[str, list[torch.Tensor]]],
    failed: dict[str, Score],
    skipped_metrics: dict[str, str],
) -> dict[str, dict[str, Score]]:
    result: dict[str, dict[str, Score]] = {}
    for method in methods:
        result[method] = {}
        for metric in metrics:
            if method in failed:
                result[method][metric] = failed[method]
            elif metric in skipped_metrics:
                result[method][metric] = Score.not_applicable(skipped_metrics[metric])
            else:
                result[method][metric] = Score.of(torch.cat(values[method][metric]))
    return result
