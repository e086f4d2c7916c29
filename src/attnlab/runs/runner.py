"""What a runner is: the training loop a recipe names (``runner: lightning``, ``runner: dqn``).

The engine (:mod:`attnlab.train.engine`) owns everything around the loop, the same for
every runner: resolving the recipe, creating and protecting the run folder, saving the
final weights, ``metrics.json``, ``report.md`` and the run's state. A runner owns the loop:
it trains into the folder it is given (checkpoints, TensorBoard under ``tb/``, figures),
resumes from ``checkpoints/last.ckpt`` when it is given one, tests, and evaluates saved
weights again. Runners are listed in :data:`attnlab.catalog.RUNNERS` as ``"module:Class"``
strings and imported only when a recipe names them.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from torch import nn

from attnlab.catalog import RUNNERS
from attnlab.errors import ConfigError
from attnlab.runs.config import TrainerConfig
from attnlab.runs.rundir import RunDir
from attnlab.runs.spec import RunSpec

Weights = Literal["final", "best", "last"]


@dataclass
class Fitted:
    """What a runner hands back to the engine after training (and testing)."""

    model: nn.Module | None  # the weights saved as model.safetensors (None when interrupted)
    metrics: dict[str, float]  # final test metrics, "test/..."
    train_seconds: float  # training wall time summed over the run's segments (runs/clock.py)
    segments: int = 1  # processes that trained this run (2 after one resume)
    figures: dict[str, Path] = field(default_factory=dict)  # report.md's figures by caption
    interrupted: bool = False  # Ctrl-C: the run stays resumable
    writes_run_folder: bool = True  # False in a DDP worker: only rank 0 writes


class Runner(ABC):
    """A training loop; subclasses are registered with :func:`register_runner`.

    ``sections`` names the recipe sections among ``task``, ``model`` and ``data`` that the
    runner reads (``seed``, ``description``, ``optim`` and ``trainer`` are always there). A
    runner registered with a ``config`` dataclass also reads a section named after itself,
    typed by that dataclass (``dqn:`` for the DQN runner).
    """

    sections: ClassVar[tuple[str, ...]] = ("model",)

    @abstractmethod
    def fit(self, run: RunDir, spec: RunSpec, *, checkpoint: Path | None) -> Fitted:
        """Train (from ``checkpoint`` when resuming, else from scratch), then test.

        When its loop starts, the runner calls ``run.mark_running()`` (rank 0 only), so that a
        resume failing before (a bad device, a config that no longer fits) leaves the run as it was.
        """

    @abstractmethod
    def evaluate(self, run: RunDir, spec: RunSpec, weights: Weights) -> dict[str, float]:
        """Test the run's ``weights`` again; returns the test metrics."""


def register_runner(name: str, *, config: Any = None) -> Callable[[type[Runner]], type[Runner]]:
    """Register a runner under ``name`` (listed in :data:`attnlab.catalog.RUNNERS`); ``config`` is
    the default of its own recipe section, a dataclass instance."""
    return RUNNERS.register(name, config=config)


def reject_trainer_keys(trainer: TrainerConfig, supported: Iterable[str], *, runner: str) -> None:
    """A one-line error for a ``trainer`` key that is set away from its default but that this
    runner does not implement (DDP, mixed precision, ...): never silently ignored."""
    defaults = TrainerConfig()
    keep = set(supported)
    for f in dataclasses.fields(TrainerConfig):
        if f.name not in keep and getattr(trainer, f.name) != getattr(defaults, f.name):
            raise ConfigError(
                f"runner '{runner}' does not support trainer.{f.name} "
                f"(= {getattr(trainer, f.name)!r}); remove it from the recipe"
            )
