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
from attnlab.explain.evaluate import (
    Score,
    default_cam_layer,
    evaluate_explanations,
    explain_run,
    explanation_maps,
    markdown_table,
)
from attnlab.explain.guided import guided_backprop, guided_grad_cam
from attnlab.explain.metrics import (
    PerturbationCurve,
    RoadCurve,
    box_masks,
    deletion,
    energy_in_region,
    insertion,
    inversion_drop,
    pointing_game,
    road,
)
from attnlab.explain.odam import InstanceExplanation, guided_odam, odam

__all__ = [
    "AttentionRecord",
    "Explanation",
    "FeatureRecord",
    "InstanceExplanation",
    "PerturbationCurve",
    "RoadCurve",
    "Score",
    "attention_layers",
    "attention_relevance",
    "attention_rollout",
    "box_masks",
    "capture",
    "class_activation_maps",
    "default_cam_layer",
    "deletion",
    "energy_in_region",
    "evaluate_explanations",
    "explain_run",
    "explanation_maps",
    "features",
    "guided_backprop",
    "guided_grad_cam",
    "guided_odam",
    "insertion",
    "inversion_drop",
    "markdown_table",
    "odam",
    "pointing_game",
    "road",
    "rollout",
]
