"""Dataset generators and loaders; importing this registers every datamodule."""

from attnlab.data import actions, clevrer, edited_maps, fashion_mnist, signal_tokens, sprites
from attnlab.data._registry import DATAMODULES, register_datamodule

__all__ = [
    "DATAMODULES",
    "actions",
    "clevrer",
    "edited_maps",
    "fashion_mnist",
    "register_datamodule",
    "signal_tokens",
    "sprites",
]
