"""Typed configuration of the trainer and the optimiser (the recipe's ``trainer:`` and ``optim:``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias


@dataclass
class TrainerConfig:
    """How long and where to train. Training is counted in optimiser steps."""

    max_steps: int = 1000
    val_every: int = 200  # validate every this many steps (and at the end)
    checkpoint_every: int = 100  # write checkpoints/last.ckpt every this many steps
    log_every: int = 10
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: int | Literal["auto"] = 1
    num_nodes: int = 1
    # ddp_find_unused_parameters_true: DDP for models that leave parameters without gradient in a
    # backward pass, e.g. several optimisers taking turns (each freezes the others' parameters)
    strategy: Literal["auto", "ddp", "ddp_find_unused_parameters_true", "ddp_spawn", "fsdp"] = "auto"
    precision: Literal["32-true", "bf16-mixed", "16-mixed", "64-true"] = "32-true"
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = None
    deterministic: bool = False  # torch.use_deterministic_algorithms (slower on GPU)
    limit_val_batches: int | None = None
    limit_test_batches: int | None = None
    progress_bar: bool = True
    # Start from these weights (a run folder or its weights.safetensors) instead of a fresh init;
    # ignored on resume, where the checkpoint holds the weights.
    init_from: str | None = None
    channels_last: bool = False  # NHWC / NDHWC weights: faster convolutions on recent GPUs
    compile: bool = False  # torch.compile the model in place (its parameter names are kept)


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule (per optimiser step)."""

    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9  # sgd only
    schedule: Literal["constant", "cosine"] = "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio


@dataclass
class NamedOptimConfig(OptimConfig):
    """One of several optimisers (``optim: {NAME: {...}, ...}``): its settings and what it trains."""

    # What it trains: a submodule of the model (a dotted path such as ``generator`` or
    # ``encoder.head``) or a parameter (``cls_token``), or a list of them; default: the optimiser's
    # own name. Every trainable parameter belongs to exactly one optimiser.
    params: str | list[str] | None = None


# A recipe's ``optim``: one optimiser for the whole model, or several by name (manual optimisation).
Optim: TypeAlias = OptimConfig | dict[str, NamedOptimConfig]
