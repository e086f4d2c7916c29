"""Dataset generators and loaders; importing this registers every datamodule."""

from attnlab.data import fashion_mnist, signal_tokens
from attnlab.data._registry import DATAMODULES, register_datamodule

__all__ = ["DATAMODULES", "fashion_mnist", "register_datamodule", "signal_tokens"]
