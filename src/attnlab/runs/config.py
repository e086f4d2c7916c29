"""Typed configuration of the trainer and the optimiser (the recipe's ``trainer:`` and ``optim:``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from attnlab.errors import ConfigError


def _require(ok: bool, key: str, value: object, rule: str, hint: str = "") -> None:
    if not ok:
        raise ConfigError(f"{key} must be {rule}, got {value!r}{hint}")


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

    def check(self, section: str = "trainer") -> None:
        """One-line ConfigError naming the first key whose value cannot train (the spec calls this)."""
        _require(
            self.max_steps >= 1,
            f"{section}.max_steps",
            self.max_steps,
            ">= 1",
            "; to test existing weights without training, use: attnlab evaluate RUN_DIR"
            if self.max_steps == 0
            else "",
        )
        for key in ("val_every", "checkpoint_every", "log_every", "num_nodes", "accumulate_grad_batches"):
            _require(getattr(self, key) >= 1, f"{section}.{key}", getattr(self, key), ">= 1")
        for key in ("limit_val_batches", "limit_test_batches"):
            value = getattr(self, key)
            _require(value is None or value >= 1, f"{section}.{key}", value, ">= 1 (or null for all batches)")
        clip = self.gradient_clip_val
        _require(clip is None or clip >= 0, f"{section}.gradient_clip_val", clip, ">= 0 (or null)")
        _require(
            self.devices == "auto" or self.devices >= 1, f"{section}.devices", self.devices, '>= 1 or "auto"'
        )
        self._check_accelerator(section)

    def _check_accelerator(self, section: str) -> None:
        import torch  # here, not at the top: reading a config should not pay for torch

        if self.accelerator in ("gpu", "cuda"):
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if count == 0:
                raise ConfigError(
                    f"{section}.accelerator is {self.accelerator!r} but this machine has no CUDA GPU "
                    f"(torch {torch.__version__}); use --trainer.accelerator cpu or auto"
                )
            if isinstance(self.devices, int) and self.devices > count:
                raise ConfigError(f"{section}.devices is {self.devices} but this machine has {count} GPU(s)")
        if self.accelerator == "mps" and not torch.backends.mps.is_available():
            raise ConfigError(f"{section}.accelerator is 'mps' but MPS is not available on this machine")


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule (per optimiser step)."""

    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8  # adam / adamw: added to the denominator (Rainbow: 1.5e-4)
    momentum: float = 0.9  # sgd only
    schedule: Literal["constant", "cosine"] = "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio

    def check(self, section: str = "optim") -> None:
        """One-line ConfigError naming the first key whose value cannot train (the spec calls this)."""
        _require(self.lr > 0, f"{section}.lr", self.lr, "> 0")
        _require(self.weight_decay >= 0, f"{section}.weight_decay", self.weight_decay, ">= 0")
        _require(
            len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
            f"{section}.betas",
            self.betas,
            "two numbers in [0, 1)",
        )
        _require(self.eps > 0, f"{section}.eps", self.eps, "> 0")
        _require(self.momentum >= 0, f"{section}.momentum", self.momentum, ">= 0")
        _require(self.warmup_steps >= 0, f"{section}.warmup_steps", self.warmup_steps, ">= 0")
        _require(0 <= self.min_lr_ratio <= 1, f"{section}.min_lr_ratio", self.min_lr_ratio, "in [0, 1]")


@dataclass
class NamedOptimConfig(OptimConfig):
    """One of several optimisers (``optim: {NAME: {...}, ...}``): its settings and what it trains."""

    # What it trains: a submodule of the model (a dotted path such as ``generator`` or
    # ``encoder.head``) or a parameter (``cls_token``), or a list of them; default: the optimiser's
    # own name. Every trainable parameter belongs to exactly one optimiser.
    params: str | list[str] | None = None


# A recipe's ``optim``: one optimiser for the whole model, or several by name (manual optimisation).
Optim: TypeAlias = OptimConfig | dict[str, NamedOptimConfig]
