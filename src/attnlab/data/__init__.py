"""Dataset generators and loaders; importing this registers every datamodule."""

from attnlab.data import actions, fashion_mnist, signal_tokens
from attnlab.data._registry import DATAMODULES, register_datamodule

__all__ = ["DATAMODULES", "actions", "fashion_mnist", "register_datamodule", "signal_tokens"]
