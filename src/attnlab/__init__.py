"""attnlab: attention mechanisms, attention-based models and their explanations."""

__version__ = "0.1.0"
