"""Does a state dict fit a model? One check, one line naming what is missing, unexpected or of
another shape: for foreign checkpoints (:mod:`attnlab.runs.convert`), run weights and weights
copied between models (a composite model's parts)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from attnlab.errors import InputError

SHOWN = 3  # names quoted per kind of mismatch


def check_state_dict(
    expected: Mapping[str, torch.Tensor],
    state: Mapping[str, torch.Tensor],
    what: str,
    *,
    origin: Mapping[str, str] | None = None,
) -> None:
    """One-line InputError when ``state`` does not fit a model whose state dict is ``expected``.

    Missing keys carry the model's names; unexpected and mis-shaped ones the names
    ``origin`` gives (the checkpoint's own, before renaming), or their own; each kind
    is sorted by the names it shows.
    """
    names = {k: k for k in state} | dict(origin or {})
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(names[k] for k in set(state) - set(expected))
    wrong = [
        f"{names[k]} has shape {tuple(state[k].shape)}, expected {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected), key=names.__getitem__)
        if state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        raise InputError(
            f"{what} does not fit the model: {_listing(missing, 'missing keys')}, "
            f"{_listing(unexpected, 'unexpected keys')}, {_listing(wrong, 'of another shape')}"
        )


def _listing(names: list[str], kind: str) -> str:
    if not names:
        return f"0 {kind}"
    more = ", ..." if len(names) > SHOWN else ""
    return f"{len(names)} {kind} ({', '.join(names[:SHOWN])}{more})"


def load_state(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    what: str,
    *,
    origin: Mapping[str, str] | None = None,
) -> None:
    """:func:`check_state_dict` against ``model``, then load every tensor into it."""
    check_state_dict(model.state_dict(), state, what, origin=origin)
    model.load_state_dict(state)
