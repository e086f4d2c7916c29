"""Models; importing this registers every model preset."""

from attnlab.models import resnet3d, st_abn, transformer_classifier
from attnlab.models._registry import create_model, list_models, model_entry, register_model

__all__ = [
    "create_model",
    "list_models",
    "model_entry",
    "register_model",
    "resnet3d",
    "st_abn",
    "transformer_classifier",
]
