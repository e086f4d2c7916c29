"""Aloe's training loss (Ding et al., NeurIPS 2021, arXiv:2012.08508).

``L = CE(answer) + BCE(choices) + lambda * L_aux``:

- answer: cross-entropy of the descriptive answer logits (B, A) with the answer ids;
- choice: binary cross-entropy with logits, one true/false label per choice, averaged
  over the real choices (``choice_mask``: padded, all-padding choices do not count);
- masked_object: the self-supervised term. Every masked object token's prediction
  ``y_i`` (``Linear(width, D_obj)`` of the transformer output there) is scored against
  the object latents ``x_j`` of the batch with a dot product, and the loss is the
  contrastive (InfoNCE / CPC-style) ``-log softmax_j(y_i . x_j)`` at the true object,
  averaged over masked tokens: the candidates are every object token of the batch
  (B * T * K of them), the one that was masked being the positive. The targets are
  held constant (the paper's are frozen MONet latents), so with learned inputs (the
  frame-CNN baseline) the term cannot move the targets.

Scores have no temperature (plain dot products of the prediction and the latent). The
public PyTorch reimplementation (pairlab/SlotFormer ``clevrer_vqa``) regresses the
masked latent with an MSE instead (and switches the term off for SAVi slots);
:func:`masked_object_nce` is the contrastive form.
Terms are returned by name, already weighted, as :meth:`attnlab.train.task.Task.loss_terms`
expects (the training loss is their sum).
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F

from attnlab.errors import InputError


class AloeTerms(Protocol):
    """What :func:`aloe_loss_terms` reads from an Aloe output."""

    answer_logits: torch.Tensor | None  # (B, A)
    choice_logits: torch.Tensor | None  # (B, C)
    choice_mask: torch.Tensor | None  # (B, C) bool
    masked_predictions: torch.Tensor | None  # (N, D)
    masked_index: torch.Tensor | None  # (N,) int64 into object_targets.flatten(0, 2)
    object_targets: torch.Tensor | None  # (B, T, K, D)


def masked_object_nce(
    predictions: torch.Tensor, candidates: torch.Tensor, positive_index: torch.Tensor
) -> torch.Tensor:
    """Mean over rows of ``-log softmax(predictions @ candidates.T)[i, positive_index[i]]``.

    ``predictions`` (N, D), ``candidates`` (M, D) (held constant), ``positive_index`` (N,)
    int64 in [0, M).
    """
    if predictions.dim() != 2 or candidates.dim() != 2 or predictions.shape[1] != candidates.shape[1]:
        raise InputError(
            f"predictions (N, D) and candidates (M, D) must share D, "
            f"got {tuple(predictions.shape)} and {tuple(candidates.shape)}"
        )
    if positive_index.shape != predictions.shape[:1] or positive_index.dtype != torch.long:
        raise InputError(
            f"positive_index must be int64 ({predictions.shape[0]},), "
            f"got {positive_index.dtype} {tuple(positive_index.shape)}"
        )
    if predictions.shape[0] == 0:
        raise InputError("no masked objects to score (mask_ratio 0?)")
    logits = predictions @ candidates.detach().to(predictions.dtype).T  # (N, M)
    return F.cross_entropy(logits, positive_index)


def _answer_term(logits: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
    if answers.shape != logits.shape[:1] or answers.dtype != torch.long:
        raise InputError(
            f"answers must be int64 ({logits.shape[0]},), got {answers.dtype} {tuple(answers.shape)}"
        )
    return F.cross_entropy(logits, answers)


def _choice_term(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if labels.shape != logits.shape:
        raise InputError(f"choice_labels must be {tuple(logits.shape)} (B, C), got {tuple(labels.shape)}")
    if not ((labels == 0) | (labels == 1)).all():
        raise InputError("choice_labels must be 0 (false) or 1 (true)")
    loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction="none")  # (B, C)
    if mask is None:
        return loss.mean()
    if not mask.any():
        raise InputError("every choice is padding: no choice to score")
    return loss[mask].mean()


def aloe_loss_terms(
    output: AloeTerms,
    *,
    answers: torch.Tensor | None = None,
    choice_labels: torch.Tensor | None = None,
    masked_object_weight: float = 0.01,
) -> dict[str, torch.Tensor]:
    """Named, weighted terms: "answer" (needs ``answers`` (B,) int64 when the output has answer
    logits), "choice" (needs ``choice_labels`` (B, C) 0/1 for choice logits), "masked_object"
    (``masked_object_weight`` times :func:`masked_object_nce`, when objects were masked).

    ``masked_object_weight`` 0.01 is the masked-object weight of the public PyTorch
    reimplementation (pairlab/SlotFormer); 0 drops the term.
    """
    if masked_object_weight < 0:
        raise InputError(f"masked_object_weight must be >= 0, got {masked_object_weight}")
    terms: dict[str, torch.Tensor] = {}
    if output.answer_logits is not None:
        if answers is None:
            raise InputError("the output answers a descriptive question: pass answers (B,) int64")
        terms["answer"] = _answer_term(output.answer_logits, answers)
    elif answers is not None:
        raise InputError("answers given, but the output has no answer_logits (it ran multiple choice)")
    if output.choice_logits is not None:
        if choice_labels is None:
            raise InputError("the output scores choices: pass choice_labels (B, C) of 0/1")
        terms["choice"] = _choice_term(output.choice_logits, choice_labels, output.choice_mask)
    elif choice_labels is not None:
        raise InputError(
            "choice_labels given, but the output has no choice_logits (pass choices to the model)"
        )
    predictions, index, targets = output.masked_predictions, output.masked_index, output.object_targets
    if predictions is not None and index is not None and targets is not None and masked_object_weight > 0:
        nce = masked_object_nce(predictions, targets.flatten(0, 2), index)
        terms["masked_object"] = masked_object_weight * nce
    return terms
