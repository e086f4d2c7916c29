"""Models; importing this registers every model preset."""

from attnlab.models import (
    abn,
    abn_densenet,
    abn_resnext,
    abn_wrn,
    aloe,
    attn_vimon,
    frame_encoder,
    monet,
    resnet,
    resnet3d,
    sfa,
    st_abn,
    transformer_classifier,
    vimon,
    vit,
)
from attnlab.models._registry import create_model, list_models, model_entry, register_model

__all__ = [
    "abn",
    "abn_densenet",
    "abn_resnext",
    "abn_wrn",
    "aloe",
    "attn_vimon",
    "create_model",
    "frame_encoder",
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
    "vit",
]
