"""Guided backpropagation and Guided Grad-CAM.

Guided backpropagation (Springenberg et al. 2015, "Striving for simplicity",
arXiv:1412.6806, eq. for R^l): through every ReLU the backward signal is
``(f > 0) * (R > 0) * R``: only positive inputs and positive gradients pass.
Guided Grad-CAM (Selvaraju et al. 2017, arXiv:1610.02391) multiplies it by the
Grad-CAM map upsampled to the input resolution. ``upsample_mode="linear"`` (the
default) resizes bilinearly (linear for 1D, trilinear for video inputs);
``"nearest"`` is captum's ``GuidedGradCam`` default, and gives its maps. The two
differ noticeably on coarse layers; linear stays the default because its maps
have no blocks at the edges of the feature grid's cells.

Only ``nn.ReLU`` modules are guided: their ``forward`` is swapped for a guided
ReLU for the duration of the call and restored afterwards, also after an
exception. Functional ``F.relu``/``torch.relu`` calls inside a ``forward`` are
invisible to module-level substitution and keep their ordinary gradient (captum's
``GuidedBackprop`` has the same requirement). The guided ReLU computes out of
place, so ``nn.ReLU(inplace=True)`` works too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from attnlab.errors import ConfigError, InputError, unknown
from attnlab.explain._checks import Targets, check_finite, check_inputs
from attnlab.explain.cam import (
    UPSAMPLE_MODES,
    Explanation,
    ScoreFn,
    class_activation_maps,
    explanation_mode,
    target_scores,
    upsample,
)


class _GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        out = x.clamp(min=0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (out,) = ctx.saved_tensors  # type: ignore[attr-defined]
        guided: torch.Tensor = grad.clamp(min=0) * (out > 0)
        return guided


def _guided_forward(x: torch.Tensor) -> torch.Tensor:
    out: torch.Tensor = _GuidedReLU.apply(x)  # type: ignore[no-untyped-call]
    return out


@contextmanager
def guided_relus(model: nn.Module) -> Iterator[list[nn.ReLU]]:
    """Every ``nn.ReLU`` of ``model`` backpropagates guided inside the block."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ConfigError(
            f"{type(model).__name__} has no nn.ReLU modules to guide (functional relu calls cannot be guided)"
        )
    if any("forward" in vars(m) for m in relus):
        raise ConfigError("the model's ReLUs are already guided or have a patched forward")
    swapped: list[nn.ReLU] = []
    try:
        for relu in relus:
            relu.forward = _guided_forward  # type: ignore[method-assign,assignment]
            swapped.append(relu)
        yield relus
    finally:
        for relu in swapped:
            del relu.forward  # the class's forward shows through again


def guided_backprop(
    model: nn.Module, inputs: torch.Tensor, *, targets: Targets = None, score_fn: ScoreFn | None = None
) -> Explanation:
    """Guided-backpropagation gradients of each example's target score; maps like ``inputs``."""
    check_inputs(inputs, model)
    with explanation_mode(model), guided_relus(model):
        leaf = inputs.detach().requires_grad_(True)
        picked, chosen = target_scores(model(leaf), score_fn, targets, inputs.shape[0])
        check_finite(picked, "the model's target scores are NaN or inf")
        (grads,) = torch.autograd.grad(picked.sum(), leaf)
    check_finite(grads, "guided-backpropagation gradients are NaN or inf")
    return Explanation(grads, chosen, picked.detach())


def guided_grad_cam(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str,
    *,
    targets: Targets = None,
    score_fn: ScoreFn | None = None,
    upsample_mode: str = "linear",
) -> Explanation:
    """Guided backprop times Grad-CAM at ``layer`` upsampled to the input; maps like ``inputs``.

    Two forward/backward passes: Grad-CAM needs the model's true gradients, which
    guided ReLUs would change. ``inputs`` are (B, C, L), (B, C, H, W) or
    (B, C, T, H, W); the map is shared by all input channels. ``upsample_mode``:
    "linear" ((bi/tri)linear) or "nearest" (captum's default)."""
    if upsample_mode not in UPSAMPLE_MODES:
        raise unknown("upsample mode", upsample_mode, UPSAMPLE_MODES)
    check_inputs(inputs, model)
    if inputs.dim() not in (3, 4, 5):
        raise InputError(
            f"inputs must be (B, C, L), (B, C, H, W) or (B, C, T, H, W), got {tuple(inputs.shape)}"
        )
    cam = class_activation_maps(model, inputs, layer, targets=targets, score_fn=score_fn)
    maps = upsample(cam.maps, inputs.shape[2:], upsample_mode)  # (B, *S)
    guided = guided_backprop(model, inputs, targets=cam.targets, score_fn=score_fn)
    return Explanation(guided.maps * maps[:, None], cam.targets, cam.scores)
