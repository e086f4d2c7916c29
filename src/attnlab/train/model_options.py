"""What the trainer config does to the model before training: initial weights, memory format, compile."""

from __future__ import annotations

import torch
from torch import nn

from attnlab.runs.config import TrainerConfig
from attnlab.runs.weights import load_initial_weights


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
