"""What the trainer config does to the model before training: initial weights, memory format, compile."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from attnlab.errors import InputError
from attnlab.runs.config import TrainerConfig
from attnlab.runs.rundir import WEIGHTS_FILE


def load_initial_weights(model: nn.Module, source: str | Path, what: str = "trainer.init_from") -> None:
    """Load a run folder's final weights, or a .safetensors file, into ``model`` (every key must match);
    errors name the setting ``what``."""
    path = Path(source)
    if path.is_dir():
        path = path / WEIGHTS_FILE
    if not path.is_file():
        raise InputError(f"{what}: no weights at {path} (a finished run folder or a .safetensors)")
    try:
        state = load_file(path)
    except (SafetensorError, OSError) as exc:
        raise InputError(f"{what}: cannot read {path}: {exc}") from None
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        raise InputError(
            f"{what}: {path} does not fit the model: {len(missing)} missing {missing[:3]}, "
            f"{len(unexpected)} unexpected {unexpected[:3]}, {len(wrong)} of another shape {wrong[:3]}"
        )
    model.load_state_dict(state)


def to_channels_last(model: nn.Module) -> None:
    """Convolution weights to NHWC (4-D) / NDHWC (5-D), in place; other tensors are untouched."""
    formats = {4: torch.channels_last, 5: torch.channels_last_3d}
    for tensor in [*model.parameters(), *model.buffers()]:
        fmt = formats.get(tensor.dim())
        if fmt is not None:
            tensor.data = tensor.data.contiguous(memory_format=fmt)


def prepare_model(model: nn.Module, config: TrainerConfig, *, resuming: bool) -> None:
    if config.init_from and not resuming:
        load_initial_weights(model, config.init_from)
    if config.channels_last:
        to_channels_last(model)
    if config.compile:
        model.compile()  # in place, unlike torch.compile(model): state-dict keys stay the same
