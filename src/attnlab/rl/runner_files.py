"""What every RL runner (DQN, PPO) does the same way around its loop: the intra-op thread count
for its small networks, the device a trainer config names, and reading its checkpoints and the
run's weights with one-line errors. Each runner keeps its own checkpoint format string."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attnlab.errors import ConfigError, RunDirError
from attnlab.runs.checkpoint_io import safe_torch_load
from attnlab.runs.config import TrainerConfig
from attnlab.runs.rundir import RunDir
from attnlab.runs.runner import Weights
from attnlab.runs.weights import load_final_weights
from attnlab.state_dicts import load_state

# the trainer keys an RL runner implements; any other set away from its default is an error
TRAINER_KEYS = (
    "max_steps",
    "val_every",
    "checkpoint_every",
    "log_every",
    "accelerator",
    "progress_bar",
    "deterministic",
    "gradient_clip_val",
)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` intra-op threads, then restore the caller's count."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def runner_device(trainer: TrainerConfig) -> torch.device:
    cuda = torch.cuda.is_available()
    if trainer.accelerator in ("gpu", "cuda") or (trainer.accelerator == "auto" and cuda):
        if not cuda:
            raise ConfigError(f"trainer.accelerator={trainer.accelerator} but torch sees no CUDA device")
        return torch.device("cuda")
    if trainer.accelerator == "mps":
        return torch.device("mps")
    return torch.device("cpu")


def checked_checkpoint(state: Any, path: Path, kind: str, checkpoint_format: str) -> dict[str, Any]:
    """``state`` if it is a checkpoint of ``checkpoint_format``; else one line naming the file."""
    if not isinstance(state, dict) or state.get("format") != checkpoint_format:
        raise RunDirError(f"{path} is not a {kind} checkpoint of this attnlab ({checkpoint_format})")
    return state


def load_run_weights(
    model: nn.Module, run: RunDir, weights: Weights, kind: str, checkpoint_format: str
) -> None:
    """The run's final weights or a checkpoint's, checked key by key (one-line errors)."""
    if weights == "final":
        load_final_weights(model, run)
        return
    path = run.best_checkpoint if weights == "best" else run.last_checkpoint
    state = checked_checkpoint(safe_torch_load(path), path, kind, checkpoint_format)
    load_state(model, dict(state["model"]), f"--weights {weights}: {path}")
