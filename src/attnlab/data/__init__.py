"""Dataset generators and loaders; importing this registers every datamodule."""

from attnlab.data import actions, clevrer, fashion_mnist, signal_tokens, sprites
from attnlab.data._registry import DATAMODULES, register_datamodule

__all__ = [
    "DATAMODULES",
    "actions",
    "clevrer",
    "fashion_mnist",
    "register_datamodule",
    "signal_tokens",
    "sprites",
]
