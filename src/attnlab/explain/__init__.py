"""Explanations: attention capture and maps, the CAM family, guided backpropagation, rendering."""

from attnlab.explain.attention_maps import attention_relevance, attention_rollout, rollout
from attnlab.explain.cam import Explanation, class_activation_maps
from attnlab.explain.capture import (
    AttentionRecord,
    FeatureRecord,
    attention_layers,
    capture,
    features,
)
from attnlab.explain.guided import guided_backprop, guided_grad_cam

__all__ = [
    "AttentionRecord",
    "Explanation",
    "FeatureRecord",
    "attention_layers",
    "attention_relevance",
    "attention_rollout",
    "capture",
    "class_activation_maps",
    "features",
    "guided_backprop",
    "guided_grad_cam",
    "rollout",
]
