"""Models, one folder per family; ``create_model(name)`` imports only the module it needs."""

from attnlab.models._registry import create_model, list_models, model_entry, register_model

__all__ = ["create_model", "list_models", "model_entry", "register_model"]
