"""Training infrastructure: tasks (LightningModules), datamodules, callbacks, the run engine."""

from attnlab.train import classification
from attnlab.train.registry import TASKS, register_task

__all__ = ["TASKS", "classification", "register_task"]
