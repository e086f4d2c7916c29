"""Dataset generators and loaders; importing this registers every datamodule."""

from attnlab.data import signal_tokens
from attnlab.data._registry import DATAMODULES, register_datamodule

__all__ = ["DATAMODULES", "register_datamodule", "signal_tokens"]
