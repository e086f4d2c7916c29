"""Explanations: attention capture, maps and distance, CAM family, guided backprop, metrics, rendering.

Scoring a finished run folder is :func:`attnlab.commands.explain_run.explain_run` (it needs the engine).
"""

from attnlab.explain.attention_distance import (
    attention_distance,
    attention_distance_figure,
    layer_attention_distances,
    patch_distances,
    plot_attention_distance,
)
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
from attnlab.explain.maps import default_cam_layer, explanation_maps
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
from attnlab.explain.scoring import Score, evaluate_explanations
from attnlab.explain.tables import markdown_table

__all__ = [
    "AttentionRecord",
    "Explanation",
    "FeatureRecord",
    "InstanceExplanation",
    "PerturbationCurve",
    "RoadCurve",
    "Score",
    "attention_distance",
    "attention_distance_figure",
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
    "explanation_maps",
    "features",
    "guided_backprop",
    "guided_grad_cam",
    "guided_odam",
    "insertion",
    "inversion_drop",
    "layer_attention_distances",
    "markdown_table",
    "odam",
    "patch_distances",
    "plot_attention_distance",
    "pointing_game",
    "road",
    "rollout",
]
