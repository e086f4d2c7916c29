"""Which configuration keys ``attnlab resume RUN --key value`` and ``attnlab evaluate RUN --key
value`` may change.

A resumed run must continue the run it checkpointed: same model, data, optimiser and step
budget. What it may change is where and how it runs, the settings a run can fail on after
a move to another machine: devices, the data's location and loading workers.

An evaluation tests the run's weights: anything but the model may change (the test data, the
probes fitted on frozen features, the devices); the model is what the weights are.
"""

from __future__ import annotations

from attnlab.errors import ConfigError

RESUMABLE_TRAINER_KEYS = (
    "trainer.accelerator",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.strategy",
    "trainer.progress_bar",
)
# data keys named like these say where the data is or how it is loaded, not what it is
DATA_LOCATION_SUFFIXES = ("root", "_dir", "path", "num_workers")


def resumable(key: str) -> bool:
    section, _, name = key.partition(".")
    if section == "data":
        return name.endswith(DATA_LOCATION_SUFFIXES)
    return key in RESUMABLE_TRAINER_KEYS


def override_keys(overrides: list[str]) -> list[str]:
    """The config keys of ``--key value`` / ``--key=value`` overrides (aliases already expanded)."""
    return [arg[2:].partition("=")[0] for arg in overrides if arg.startswith("--")]


def check_resume_overrides(overrides: list[str]) -> None:
    """A one-line error for an override that would not continue the same run."""
    for key in override_keys(overrides):
        if not resumable(key):
            allowed = ", ".join(
                (*RESUMABLE_TRAINER_KEYS, "data.*root, data.*_dir, data.*path, data.num_workers")
            )
            raise ConfigError(
                f"resume cannot change {key}: the run would no longer continue what it checkpointed "
                f"(start a new run instead); resume may change {allowed}"
            )


def check_evaluate_overrides(overrides: list[str]) -> None:
    """A one-line error for an override of the model a run's weights were trained as."""
    for key in override_keys(overrides):
        if key.partition(".")[0] == "model":
            raise ConfigError(
                f"evaluate cannot change {key}: the run's weights are its model as trained "
                "(evaluate may change the task, data and trainer settings)"
            )
