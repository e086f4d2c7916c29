"""Output dataclasses shared by several model families."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ClassifierOutput:
    logits: torch.Tensor  # (B, num_classes)
    features: torch.Tensor  # (B, D), the representation the head reads
