"""Sliding-window classification of variable-length signals, shared by the signal models.

Seed 001 (the 1D-SAN thesis, section 3.4) classifies a variable-length signal by cutting
64-step windows starting at step 0 and every 10 steps after it, classifying each window and
accumulating the per-class outputs; the class with the largest sum wins. Every model here
classifies fixed-length windows; :class:`WindowClassifier` does the rest:

* a (B, C, L) signal with L == window is one window (training on random crops);
* L > window gives n = (L - window) // stride + 1 windows, classified in one batch of
  B * n windows, then combined per signal: ``mean`` averages the softmax outputs (the
  thesis's accumulation; the logits returned are the log of that mean), ``vote`` counts
  each window's argmax, ties broken by the mean (returned as the log of
  (votes + mean) / (n + 1), a distribution whose argmax is the vote);
* ``fft``: each window is replaced by the magnitude of its real FFT per channel
  (W // 2 + 1 bins, orthonormal scaling), the thesis's frequency-domain input.
Steps after the last full window are not read, as in the thesis.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.models.outputs import ClassifierOutput

Combine = Literal["mean", "vote"]


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """The first step of every window read from a signal of ``length`` steps."""
    return list(range(0, length - window + 1, stride))


def fft_bins(window: int) -> int:
    return window // 2 + 1


def fft_magnitude(x: torch.Tensor) -> torch.Tensor:
    """(..., W) -> (..., W // 2 + 1): |rfft| with orthonormal scaling, so the energy matches x's."""
    return torch.fft.rfft(x, dim=-1, norm="ortho").abs()


def combine(logits: torch.Tensor, how: Combine) -> torch.Tensor:
    """(B, n, K) window logits -> (B, K) log-probabilities of the signal's class."""
    probs = logits.softmax(dim=-1)  # (B, n, K)
    mean = probs.mean(dim=1)  # (B, K)
    if how == "mean":
        return mean.log()
    votes = nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).sum(dim=1).to(mean.dtype)  # (B, K)
    return ((votes + mean) / (logits.shape[1] + 1)).log()


def overlap_mean(values: torch.Tensor, length: int, window: int, stride: int) -> torch.Tensor:
    """Per-window values (B, n, W) -> (B, length): at each step the mean over the windows that
    cover it (NaN where none does: the tail after the last window)."""
    B, _, W = values.shape
    total = values.new_zeros(B, length)
    count = values.new_zeros(length)
    for i, start in enumerate(window_starts(length, window, stride)):
        total[:, start : start + W] += values[:, i]
        count[start : start + W] += 1
    return total / count.where(count > 0, torch.nan)


class WindowClassifier(nn.Module):
    """Base of the signal models: checks, windows, FFT and combination around ``classify_windows``.

    Subclasses set ``in_channels``, ``window``, ``stride``, ``combine_by`` and ``fft`` and implement
    ``classify_windows((N, C, T)) -> (logits (N, K), features (N, D))`` with T = window, or the
    FFT bins when ``fft``.
    """

    in_channels: int
    window: int
    stride: int
    combine_by: Combine
    fft: bool

    def _setup_windows(self, in_channels: int, window: int, stride: int, how: Combine, fft: bool) -> None:
        if in_channels < 1 or window < 2 or stride < 1:
            raise ConfigError(
                f"need in_channels >= 1, window >= 2, stride >= 1; got {in_channels}, {window}, {stride}"
            )
        if how not in ("mean", "vote"):
            raise ConfigError(f"combine must be 'mean' or 'vote', got {how!r}")
        self.in_channels, self.window, self.stride, self.combine_by, self.fft = (
            in_channels,
            window,
            stride,
            how,
            fft,
        )

    @property
    def input_length(self) -> int:
        """Steps of what ``classify_windows`` sees: the window, or its FFT bins."""
        return fft_bins(self.window) if self.fft else self.window

    def classify_windows(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or not x.is_floating_point():
            raise InputError(f"signals must be floating (B, channels, steps), got {x.dtype} {tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise InputError(
                f"the model was built for {self.in_channels} channels, the signal has {x.shape[1]}"
                f" (set model.in_channels)"
            )
        if x.shape[2] < self.window:
            raise InputError(f"signal of {x.shape[2]} steps is shorter than the window ({self.window} steps)")
        if not torch.isfinite(x).all():
            bad = (~torch.isfinite(x)).any(dim=(1, 2)).nonzero().flatten().tolist()
            raise InputError(f"signals {bad[:5]} of the batch have NaN or infinite samples")

    def to_windows(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, L) -> (B * n, C, T): the windows (FFT magnitudes if ``fft``), signal-major."""
        windows = x.unfold(2, self.window, self.stride)  # (B, C, n, W)
        windows = windows.permute(0, 2, 1, 3).flatten(0, 1)  # (B * n, C, W)
        return fft_magnitude(windows) if self.fft else windows

    def forward(self, x: torch.Tensor) -> ClassifierOutput:
        self._check(x)
        B = x.shape[0]
        logits, features = self.classify_windows(self.to_windows(x))  # (B * n, K), (B * n, D)
        n = logits.shape[0] // B
        if n == 1:  # one window: the plain classifier (training on crops)
            return ClassifierOutput(logits=logits, features=features)
        features = features.view(B, n, -1).mean(dim=1)  # (B, D)
        return ClassifierOutput(logits=combine(logits.view(B, n, -1), self.combine_by), features=features)
