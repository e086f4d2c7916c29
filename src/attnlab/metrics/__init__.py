"""Task metrics: tracking (MOT, as the ViMON benchmark computes it) and mask quality (FG-ARI, mIoU)."""

from attnlab.metrics.mot import MOTMetrics, mot_metrics, mot_metrics_from_json, mot_metrics_from_tensors
from attnlab.metrics.segmentation import fg_ari, hungarian_miou

__all__ = [
    "MOTMetrics",
    "fg_ari",
    "hungarian_miou",
    "mot_metrics",
    "mot_metrics_from_json",
    "mot_metrics_from_tensors",
]
