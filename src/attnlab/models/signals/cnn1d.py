"""The 1D-CNN baseline of seed 001 (the 1D-SAN thesis, section 4.2).

"Two convolution layers and an output layer, three layers in all"; the thesis gives no
kernel sizes or widths. Ours: Conv1d(k=5, same padding)-ReLU-MaxPool(2) twice, 32 then 64
channels, flatten, linear output layer. Windows, FFT input and combination as
:mod:`attnlab.models.signals.windows`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.models._registry import register_model
from attnlab.models.signals.windows import Combine, WindowClassifier


@dataclass
class CNN1DConfig:
    in_channels: int = 6
    num_classes: int = 4
    channels: tuple[int, int] = (32, 64)
    kernel_size: int = 5
    pool: int = 2
    window: int = 64
    stride: int = 10
    combine: Combine = "mean"
    fft: bool = False


@register_model("cnn1d", config=CNN1DConfig())
@register_model("cnn1d-fft", config=CNN1DConfig(fft=True))
class CNN1D(WindowClassifier):
    """1D-CNN on (B, in_channels, L >= window) signals -> :class:`ClassifierOutput` (sliding windows)."""

    def __init__(self, config: CNN1DConfig) -> None:
        super().__init__()
        self.config = c = config
        self._setup_windows(c.in_channels, c.window, c.stride, c.combine, c.fft)
        if c.kernel_size % 2 == 0 or c.pool < 1 or min(c.channels) < 1 or c.num_classes < 2:
            raise ConfigError(f"need an odd kernel, pool >= 1, channels >= 1, 2+ classes; got {c}")
        steps = self.input_length // c.pool // c.pool  # after the two poolings
        if steps < 1:
            raise ConfigError(f"{self.input_length} steps pooled twice by {c.pool} leave nothing")
        self.features = nn.Sequential(
            nn.Conv1d(c.in_channels, c.channels[0], c.kernel_size, padding=c.kernel_size // 2),
            nn.ReLU(),
            nn.MaxPool1d(c.pool),
            nn.Conv1d(c.channels[0], c.channels[1], c.kernel_size, padding=c.kernel_size // 2),
            nn.ReLU(),
            nn.MaxPool1d(c.pool),
        )
        self.head = nn.Linear(c.channels[1] * steps, c.num_classes)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        """Two windows per signal, so the registry tests also run the combination."""
        return {"x": torch.randn(batch_size, self.config.in_channels, self.window + self.stride)}

    def classify_windows(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = self.features(windows).flatten(1)  # (N, channels[1] * steps)
        return self.head(flat), flat
