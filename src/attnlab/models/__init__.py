"""Models; importing this registers every model preset."""

from attnlab.models._registry import create_model, list_models, model_entry, register_model
from attnlab.models.abn import densenet_abn, resnet_abn, resnext_abn, st_abn, wrn_abn
from attnlab.models.classifiers import resnet, resnet3d, transformer_classifier, vit
from attnlab.models.object_centric import attn_vimon, monet, sfa, vimon
from attnlab.models.video_qa import aloe, aloe_frames, aloe_slots, frame_encoder

__all__ = [
    "aloe",
    "aloe_frames",
    "aloe_slots",
    "attn_vimon",
    "create_model",
    "densenet_abn",
    "frame_encoder",
    "list_models",
    "model_entry",
    "monet",
    "register_model",
    "resnet",
    "resnet3d",
    "resnet_abn",
    "resnext_abn",
    "sfa",
    "st_abn",
    "transformer_classifier",
    "vimon",
    "vit",
    "wrn_abn",
]
