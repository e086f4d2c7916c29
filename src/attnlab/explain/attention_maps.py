"""Token-to-token relevance of attnlab transformers from their attention weights.

* Attention rollout (Abnar & Zuidema 2020, "Quantifying attention flow in
  transformers", arXiv:2005.00928): each layer's heads are fused (mean, max or
  min), the residual connection is modelled as ``0.5 I + 0.5 A`` with rows
  renormalised to sum to one, and the layers are multiplied,
  ``R = A_L ... A_2 A_1``. Class-agnostic.
* Gradient-weighted relevance (Chefer, Gur & Wolf 2021, "Generic
  attention-model explainability", arXiv:2103.15679, eq. 5-6 for
  self-attention): starting from ``R = I``, for each layer in forward order
  ``R = R + mean_h(ReLU(dy/dA * A)) R``, where ``y`` is the target class score.

Both return (B, N, N) matrices over the N tokens the attention layers see;
row ``i`` says how much each token contributed to token ``i``. For
``transformer-classifier-*`` models, whose [CLS] token sits at position 0,
``maps[:, 0, 1:]`` is the relevance of the input tokens to the prediction.

The weights come from :func:`attnlab.explain.capture`; layers are taken in the
order they were first called in the forward, and each must be a self-attention
(N x N) layer called once per forward (cross-attention and recurrent layers have
no place in a chain of token mixing; pick the self-attention ones with
``layers=``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from attnlab.errors import ConfigError, InputError, unknown
from attnlab.explain._checks import Targets, check_finite, check_inputs
from attnlab.explain.cam import (
    Explanation,
    ScoreFn,
    eval_mode,
    explanation_mode,
    target_scores,
)
from attnlab.explain.capture import AttentionRecord, capture

HEAD_FUSIONS = ("mean", "max", "min")


def _layer_weights(record: AttentionRecord) -> list[torch.Tensor]:
    """Each called layer's (B, H, N, N) weights in first-call order, validated."""
    if len(record) == 0:
        raise InputError("no attention layer was called by the model's forward")
    weights: list[torch.Tensor] = []
    for name in record:  # insertion order of the record is the order of first calls
        calls = record.calls(name)
        if len(calls) != 1:
            raise ConfigError(f"attention layer '{name}' ran {len(calls)} times; pass layers= without it")
        w = calls[0]
        if w.dim() != 4 or w.shape[-1] != w.shape[-2] or (weights and w.shape != weights[0].shape):
            raise InputError(
                f"attention layer '{name}' has weights {tuple(w.shape)}; a chain needs self-attention "
                "(B, H, N, N) with the same N in every layer (pass layers= to choose)"
            )
        weights.append(w)
    return weights


def _fuse_heads(weights: torch.Tensor, head_fusion: str) -> torch.Tensor:
    if head_fusion == "mean":
        return weights.mean(1)
    return weights.amax(1) if head_fusion == "max" else weights.amin(1)


def rollout(weights: Sequence[torch.Tensor], *, head_fusion: str = "mean") -> torch.Tensor:
    """Attention rollout of per-layer (B, H, N, N) weights in forward order -> (B, N, N)."""
    if head_fusion not in HEAD_FUSIONS:
        raise unknown("head fusion", head_fusion, HEAD_FUSIONS)
    eye = torch.eye(weights[0].shape[-1], dtype=weights[0].dtype, device=weights[0].device)
    joint = eye.expand_as(weights[0][:, 0])  # (B, N, N)
    for w in weights:
        mixed = 0.5 * _fuse_heads(w, head_fusion) + 0.5 * eye  # the residual stream keeps half
        mixed = mixed / mixed.sum(-1, keepdim=True)  # max/min fusion breaks row-stochasticity
        joint = mixed @ joint
    return joint


def gradient_relevance(weights: Sequence[torch.Tensor], grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """Chefer et al.'s self-attention relevance from weights and their gradients -> (B, N, N)."""
    eye = torch.eye(weights[0].shape[-1], dtype=weights[0].dtype, device=weights[0].device)
    relevance = eye.expand_as(weights[0][:, 0])  # (B, N, N)
    for w, g in zip(weights, grads, strict=True):
        mixed = (g * w).clamp(min=0).mean(1)  # (B, N, N)
        relevance = relevance + mixed @ relevance
    return relevance


def attention_rollout(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    head_fusion: str = "mean",
    layers: Sequence[str] | None = None,
) -> torch.Tensor:
    """Rollout (B, N, N) of ``model(inputs)``'s attention (all layers, or ``layers``)."""
    if head_fusion not in HEAD_FUSIONS:
        raise unknown("head fusion", head_fusion, HEAD_FUSIONS)
    check_inputs(inputs, model, token_ids=True)
    with eval_mode(model), torch.no_grad(), capture(model, layers=layers) as record:
        model(inputs)
    joint = rollout(_layer_weights(record), head_fusion=head_fusion)
    check_finite(joint, "attention rollout is NaN or inf (non-finite attention weights)")
    return joint


def attention_relevance(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    targets: Targets = None,
    score_fn: ScoreFn | None = None,
    layers: Sequence[str] | None = None,
) -> Explanation:
    """Gradient-weighted relevance (B, N, N) for each example's target class.

    One forward and one backward for the batch (eval mode keeps examples apart);
    targets default to the predicted class; ``score_fn`` as in
    :func:`attnlab.explain.cam.class_activation_maps`."""
    check_inputs(inputs, model, token_ids=True)
    with explanation_mode(model), capture(model, differentiable=True, layers=layers) as record:
        picked, chosen = target_scores(model(inputs), score_fn, targets, inputs.shape[0])
        check_finite(picked, "the model's target scores are NaN or inf")
        weights = _layer_weights(record)
        raw = torch.autograd.grad(picked.sum(), weights, allow_unused=True)
    # a layer the score does not depend on contributes nothing (zero gradient)
    grads = [torch.zeros_like(w) if g is None else g for w, g in zip(weights, raw, strict=True)]
    maps = gradient_relevance([w.detach() for w in weights], grads)
    check_finite(maps, "attention relevance is NaN or inf")
    return Explanation(maps, chosen, picked.detach())
