"""Foreign checkpoints into attnlab models: read safely, rename keys, check, load.

One path for every state dict that attnlab did not write itself (an official
checkpoint, a file from another library) and for its own weights files:

1. :func:`read_state_dict`: ``torch.load(weights_only=True)`` (zip or legacy pickle
   format; the restricted unpickler refuses anything but tensors and plain
   containers, so nothing in the file can run code) or safetensors; optionally
   unwraps a training script's checkpoint (``{"state_dict": ...}``) and strips
   prefixes such as DataParallel's ``module.``;
2. :func:`rename_keys`: ordered ``(regex, replacement)`` rules, each applied with
   :func:`re.sub` to the name the rules before it left; a replacement of ``None`` drops
   the key (a tensor the model has no use for); a name no rule matches stays as it is;
3. :func:`check_state_dict`: missing, unexpected and mis-shaped keys in one line.

Models keep their rules as data (``OFFICIAL_KEYS`` beside the model); the named entry
points that combine them with this module are in :mod:`attnlab.runs.official`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from attnlab.errors import InputError
from attnlab.state_dicts import load_state

Replacement = str | Callable[[re.Match[str]], str] | None  # None: drop the key
Rule = tuple[str, Replacement]


def read_state_dict(
    path: str | Path, what: str, *, unwrap: Sequence[str] = (), strip: Sequence[str] = ()
) -> dict[str, torch.Tensor]:
    """The tensors in ``path`` (``.safetensors`` or a torch file), keys with ``strip`` prefixes removed.

    ``unwrap``: keys under which a checkpoint may nest the state dict (the first one present
    whose value is a dict is taken). ``what`` names the file in the one-line InputErrors.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found: {path}")
    loaded = _load(path, what)
    for key in unwrap:
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
            break
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
    ):
        raise InputError(f"{what} {path} is not a state dict of tensors")
    return {_strip(k, strip): v for k, v in loaded.items()}


def _load(path: Path, what: str) -> Any:
    try:
        if path.suffix == ".safetensors":
            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch and safetensors raise many types for a corrupt or foreign file
        lines = str(err).strip().splitlines()
        reason = lines[0] if lines else type(err).__name__
        raise InputError(f"cannot read {what} {path}: {reason}") from None


def _strip(key: str, prefixes: Iterable[str]) -> str:
    for prefix in prefixes:
        key = key.removeprefix(prefix)
    return key


def rename_key(key: str, rules: Sequence[Rule]) -> str | None:
    """``key`` after every rule in order; None when a rule drops it."""
    for pattern, replacement in rules:
        if replacement is None:
            if re.search(pattern, key):
                return None
            continue
        key = re.sub(pattern, replacement, key)
    return key


def rename_keys(
    state: Mapping[str, torch.Tensor], rules: Sequence[Rule]
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The renamed state and, for each new key, the key it had in ``state`` (for messages)."""
    renamed: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for key, value in state.items():
        new = rename_key(key, rules)
        if new is None:
            continue
        if new in origin:
            raise InputError(f"checkpoint keys {origin[new]} and {key} both become {new}")
        renamed[new], origin[new] = value, key
    return renamed, origin


def load_foreign(
    model: nn.Module,
    path: str | Path,
    rules: Sequence[Rule],
    what: str,
    *,
    unwrap: Sequence[str] = (),
    strip: Sequence[str] = (),
) -> None:
    """Read ``path``, rename its keys by ``rules`` and load it into ``model`` (every key must fit)."""
    state, origin = rename_keys(read_state_dict(path, what, unwrap=unwrap, strip=strip), rules)
    load_state(model, state, f"{what} {path}", origin=origin)
