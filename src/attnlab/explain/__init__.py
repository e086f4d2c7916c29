"""Explanations: attention capture, feature access, and (later) CAM family, ODAM, metrics."""

from attnlab.explain.capture import AttentionRecord, FeatureRecord, attention_layers, capture, features

__all__ = ["AttentionRecord", "FeatureRecord", "attention_layers", "capture", "features"]
