"""Models; importing this registers every model preset."""

from attnlab.models import (
    abn,
    attn_vimon,
    monet,
    resnet,
    resnet3d,
    sfa,
    st_abn,
    transformer_classifier,
    vimon,
)
from attnlab.models._registry import create_model, list_models, model_entry, register_model

__all__ = [
    "abn",
    "attn_vimon",
    "create_model",
    "list_models",
    "model_entry",
    "monet",
    "register_model",
    "resnet",
    "resnet3d",
    "sfa",
    "st_abn",
    "transformer_classifier",
    "vimon",
]
