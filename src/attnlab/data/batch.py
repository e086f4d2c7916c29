"""What a task may assume about a batch: the batch protocol.

A batch is whatever a datamodule's collate function returns:

- a dict of tensors (the default collate of dict samples), or
- a dataclass whose fields are tensors, lists (ragged point sets, prompts per image) or
  other values. Lightning moves every tensor in it, lists and nested dataclasses included,
  to the device (``lightning_utilities.apply_to_collection``). It must not be frozen:
  Lightning sets the moved fields on a copy.

Its size (what logged means are weighted by) is :func:`batch_size`: the batch's own
``batch_size`` attribute when it has one, otherwise its first field (in field or key order)
that is a tensor (its first dimension) or a list (its length: one entry per sample).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch

from attnlab.errors import InputError


def batch_size(batch: Any) -> int:
    """The number of samples in ``batch`` (see the module docstring)."""
    size = getattr(batch, "batch_size", None)
    if isinstance(size, int):
        return size
    for value in _fields(batch):
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
        if isinstance(value, (list, tuple)):
            return len(value)
    raise InputError(
        f"cannot tell the size of a {type(batch).__name__} batch: no tensor or list field; "
        "give it a batch_size attribute"
    )


def _fields(batch: Any) -> list[Any]:
    if isinstance(batch, torch.Tensor):
        return [batch]
    if isinstance(batch, Mapping):
        return list(batch.values())
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return [getattr(batch, f.name) for f in dataclasses.fields(batch)]
    if isinstance(batch, (list, tuple)):
        return list(batch[:1])  # a tuple batch (inputs, targets): the first element's size
    return []
