"""Every explanation method's maps by name, at the input's resolution.

:func:`explanation_maps` makes each method's map for a batch, (B, H, W) for
images, (B, T, H, W) for videos and (B, L) for 1D signals; the scoring loop
(:mod:`attnlab.explain.scoring`) and the figures of a run use it.

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
ResNet, the CAM family when no module outputs feature maps) raises
:class:`NotApplicable` inside; :func:`explanation_maps` gives the reason in place
of the maps, and the scoring loop a :class:`~attnlab.explain.scoring.Score` with
``count == 0`` and the reason in its ``note``, never an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import ConfigError, InputError, unknown
from attnlab.explain._checks import check_class_scores, check_finite
from attnlab.explain._checks import check_inputs as check_model_inputs
from attnlab.explain.attention_maps import attention_relevance, attention_rollout
from attnlab.explain.cam import METHODS as CAM_METHODS
from attnlab.explain.cam import ScoreFn, class_activation_maps, class_scores, eval_mode, upsample
from attnlab.explain.guided import guided_grad_cam
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
MapFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]  # (model, inputs, targets) -> maps


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
class MapContext:
    """What every batch's maps need: resolved once, on the first batch."""

    model: nn.Module
    layer: str | None
    layer_reason: str  # why there is no layer
    attention: list[str]  # self-attention layers for rollout/relevance
    score_fn: ScoreFn | None
    generator: torch.Generator
    custom: Mapping[str, MapFn]


def make_context(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str | None,
    score_fn: ScoreFn | None,
    seed: int,
    custom: Mapping[str, MapFn],
) -> MapContext:
    reason = ""
    if layer is None:
        try:
            layer = default_cam_layer(model, inputs[:1])
        except ConfigError as err:
            reason = str(err)
    elif layer not in dict(model.named_modules()) or layer == "":
        raise unknown("module", layer, [n for n, _ in model.named_modules() if n])
    attention = [n for n, m in model.named_modules() if isinstance(m, MultiHeadAttention)]
    return MapContext(model, layer, reason, attention, score_fn, torch.Generator().manual_seed(seed), custom)


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


def _attention_maps(
    ctx: MapContext, method: str, inputs: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
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


def _cam_maps(ctx: MapContext, method: str, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
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


def method_maps(ctx: MapContext, method: str, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
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


def check_methods(methods: Sequence[str], custom: Mapping[str, MapFn]) -> None:
    """Every name is a built-in or a custom method, and there is at least one."""
    known = (*METHODS, *custom)
    for method in methods:
        if method not in known:
            raise unknown("explanation method", method, known)
    if not methods:
        raise ConfigError("give at least one method")


def check_inputs(inputs: torch.Tensor, model: nn.Module, *, offset: int = 0) -> None:
    """Inputs that every method and metric takes: finite floating (B, C, L), (B, C, H, W), (B, C, T, H, W)."""
    if isinstance(inputs, torch.Tensor) and (not inputs.is_floating_point() or inputs.dim() not in (3, 4, 5)):
        raise InputError(
            "explanation metrics need floating (B, C, L), (B, C, H, W) or (B, C, T, H, W) inputs "
            f"(token ids cannot be perturbed pixel by pixel), got {inputs.dtype} {tuple(inputs.shape)}"
        )
    check_model_inputs(inputs, model, min_dim=3, offset=offset)


def predicted_classes(
    model: nn.Module, inputs: torch.Tensor, score_fn: ScoreFn | None, *, offset: int = 0
) -> torch.Tensor:
    """(B,) each example's highest-scoring class; ``offset`` numbers the examples in messages."""
    with eval_mode(model), torch.no_grad():
        scores = class_scores(model(inputs), score_fn, inputs.shape[0])
    check_class_scores(scores, "the model's scores", offset=offset)
    return scores.argmax(1)


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

    ``targets`` default to the predicted classes; arguments as
    :func:`~attnlab.explain.scoring.evaluate_explanations`."""
    custom = dict(custom or {})
    check_methods(methods, custom)
    check_inputs(inputs, model)
    ctx = make_context(model, inputs, layer, score_fn, seed, custom)
    chosen = predicted_classes(model, inputs, score_fn) if targets is None else targets
    out: dict[str, torch.Tensor | str] = {}
    for method in methods:
        try:
            maps = method_maps(ctx, method, inputs, chosen).detach()
        except NotApplicable as reason:
            out[method] = str(reason)
            continue
        check_finite(maps, f"{method} maps are NaN or inf")
        out[method] = maps
    return out
