"""Weights into a built model: a finished run folder's final weights, or a .safetensors file.

Used by ``trainer.init_from`` (the whole model), by the engine when it builds the
sub-models a recipe names (:class:`attnlab.models._submodel.SubModel`), and by every
runner's ``evaluate --weights final``.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from attnlab.errors import InputError, RunDirError
from attnlab.runs.convert import read_state_dict
from attnlab.runs.rundir import WEIGHTS_FILE, RunDir
from attnlab.state_dicts import load_state

CONFIG_FILE = "config.yaml"


def check_run_folder(run_dir: str | Path, what: str) -> Path:
    """A finished run folder (config.yaml and final weights), or a one-line InputError naming ``what``."""
    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise InputError(f"{what}: no run folder at {path}")
    if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
        raise InputError(
            f"{what}: {path} is not a finished run folder (it needs {CONFIG_FILE} and {WEIGHTS_FILE})"
        )
    return path


def load_initial_weights(model: nn.Module, source: str | Path, what: str = "trainer.init_from") -> None:
    """Load a run folder's final weights, or a .safetensors file, into ``model`` (every key must match);
    errors name the setting ``what``."""
    path = Path(source).expanduser()
    if path.is_dir():
        path = path / WEIGHTS_FILE
    if not path.is_file():
        raise InputError(f"{what}: no weights at {path} (a finished run folder or a .safetensors)")
    load_state(model, read_state_dict(path, f"{what}:"), f"{what}: {path}")


def load_final_weights(model: nn.Module, run: RunDir) -> None:
    """A run's own final weights into ``model`` (``attnlab evaluate --weights final``), key by key."""
    if not run.weights.is_file():
        raise RunDirError(f"{run.path} has no final weights (unfinished run?); try --weights last")
    state = read_state_dict(run.weights, "the final weights")
    load_state(model, state, f"{run.weights} (with {run.config})")
