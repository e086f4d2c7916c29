"""Checks shared by every explanation entry point, each failing with one line that names the problem.

* :func:`check_inputs`: a batched, non-empty, finite floating tensor (or integer
  token ids where the method allows them) of at least the rank the model takes.
  The rank comes from the model's first convolution (``Conv1d`` -> (B, C, L),
  ``Conv2d`` -> (B, C, H, W), ``Conv3d`` -> (B, C, T, H, W)): PyTorch's
  convolutions read a tensor one rank short as a single unbatched example, so a
  (3, H, W) batch of three grey images would run as one RGB image and fail later
  with a message about the scores' shape. Higher ranks pass, because a model
  may fold frames into the batch before a 2D convolution. A model with no
  convolution is checked for a batch dimension only.
* :func:`check_finite`: per-example values (scores, maps) must be finite; the
  message names every example that is not, so that no NaN map, NaN AUC or
  silently zeroed normalised map comes out. :func:`check_class_scores` is the
  same for scores that only go through a softmax (metrics, predicted classes),
  where -inf is a log-probability of 0, not an error.
* :func:`check_targets` / :func:`check_target_range`: explicit target classes for
  the whole batch, checked before it is cut into chunks, so that a message lists
  every bad target rather than the first chunk's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from attnlab.errors import InputError

Targets = int | Sequence[int] | torch.Tensor | None
_LAYOUTS = {3: "(B, C, L)", 4: "(B, C, H, W)", 5: "(B, C, T, H, W)"}
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_INTEGERS = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
_LISTED = 20  # at most this many example indices in a message


def _examples(bad: torch.Tensor, offset: int = 0) -> str:
    """'[1, 4] (2 of 6)' for a (B,) bool tensor, numbered from ``offset``; long lists are cut."""
    idx = (bad.nonzero()[:, 0] + offset).tolist()
    shown = ", ".join(str(i) for i in idx[:_LISTED])
    among = f"{len(bad)}" if offset == 0 else f"examples {offset} to {offset + len(bad) - 1}"
    return f"[{shown}{', ...' if len(idx) > _LISTED else ''}] ({len(idx)} of {among})"


def input_rank(model: nn.Module) -> tuple[int, str, str] | None:
    """(rank, name, class) of the batched input the model's first convolution takes, or None."""
    for name, module in model.named_modules():
        if isinstance(module, _CONVS):
            return len(module.kernel_size) + 2, name, type(module).__name__
    return None


def check_inputs(
    inputs: torch.Tensor,
    model: nn.Module | None = None,
    *,
    token_ids: bool = False,
    min_dim: int = 2,
    offset: int = 0,
) -> None:
    """A batched, non-empty, finite tensor of at least the rank ``model`` takes.

    Floating, or integer token ids where ``token_ids`` (attention maps and CAMs
    at a layer after an embedding). ``offset``: the first example's index in the
    messages (a chunk of a longer stream)."""
    if not isinstance(inputs, torch.Tensor):
        raise InputError(f"inputs must be a tensor, got {type(inputs).__name__}")
    integer = token_ids and inputs.dtype in _INTEGERS
    if not inputs.is_floating_point() and not integer:
        allowed = "floating tensor or integer token ids" if token_ids else "floating tensor"
        raise InputError(f"inputs must be a {allowed}, got {inputs.dtype}")
    if inputs.dim() < min_dim:
        raise InputError(
            f"inputs must be a batched tensor of at least {min_dim} dims (B, ...), got {tuple(inputs.shape)}"
        )
    if len(inputs) == 0:
        raise InputError(f"inputs hold no examples: shape {tuple(inputs.shape)}")
    expected = None if model is None or integer else input_rank(model)
    if expected is not None and inputs.dim() < expected[0]:
        rank, name, kind = expected
        raise InputError(
            f"{type(model).__name__} takes batched {rank}-D inputs {_LAYOUTS[rank]} (its first convolution "
            f"'{name}' is {kind}), got a {inputs.dim()}-D tensor {tuple(inputs.shape)}"
        )
    if not integer:
        check_finite(inputs, "inputs contain NaN or inf", offset=offset, verb="in examples")


def check_finite(values: torch.Tensor, what: str, *, offset: int = 0, verb: str = "for examples") -> None:
    """Every example's (dim 0) values finite; else InputError '<what> <verb> [i, j] (n of B)'."""
    bad = ~torch.isfinite(values.detach()).reshape(len(values), -1).all(1)  # (B,)
    if bad.any():
        raise InputError(f"{what} {verb} {_examples(bad.cpu(), offset)}")


def check_class_scores(scores: torch.Tensor, what: str, *, offset: int = 0) -> None:
    """(B, num_classes) scores with a softmax: NaN or +inf are refused, -inf (log 0) is a valid score."""
    check_finite(scores.detach().double().softmax(1), f"{what} are NaN or +inf", offset=offset)


def check_targets(targets: Targets, batch: int) -> torch.Tensor | None:
    """(B,) int64 target classes (an int stands for every example), or None for the predicted ones.

    Range checks need the number of classes, known after a forward: see :func:`check_target_range`."""
    if targets is None:
        return None
    chosen = torch.as_tensor(targets)
    if chosen.dtype not in _INTEGERS:
        raise InputError(f"targets must be integer class indices, got {chosen.dtype}")
    chosen = chosen.long().expand(batch) if chosen.dim() == 0 else chosen.long()
    if chosen.shape != (batch,):
        raise InputError(f"targets must be an int or have shape (B={batch},), got {tuple(chosen.shape)}")
    return chosen


def check_target_range(targets: torch.Tensor, num_classes: int) -> None:
    """Every one of the (B,) targets in [0, num_classes); the message lists all that are not."""
    bad = (targets < 0) | (targets >= num_classes)
    if bad.any():
        values = targets[bad][:_LISTED].tolist()
        raise InputError(
            f"targets must lie in [0, {num_classes}), got {values} for examples {_examples(bad.cpu())}"
        )
