"""The explanation-metric names as they were importable before the split (kept for existing imports).

The code lives in :mod:`attnlab.explain.maps` (which methods exist and how each makes
its maps), :mod:`attnlab.explain.scoring` (the scoring loop) and
:mod:`attnlab.explain.tables` (tables); running a whole run folder is
:mod:`attnlab.commands.explain_run`.
"""

from attnlab.explain.maps import (
    METHODS,
    MapFn,
    NotApplicable,
    center_maps,
    default_cam_layer,
    explanation_maps,
)
from attnlab.explain.scoring import BETTER, METRICS, TARGETS, Score, evaluate_explanations
from attnlab.explain.tables import markdown_table

__all__ = [
    "BETTER",
    "METHODS",
    "METRICS",
    "TARGETS",
    "MapFn",
    "NotApplicable",
    "Score",
    "center_maps",
    "default_cam_layer",
    "evaluate_explanations",
    "explanation_maps",
    "markdown_table",
]
