"""Training infrastructure: tasks (LightningModules), datamodules, callbacks, the run engine."""

from attnlab.train import attention_branch, classification
from attnlab.train.registry import TASKS, register_task

__all__ = ["TASKS", "attention_branch", "classification", "register_task"]
