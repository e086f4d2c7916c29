"""classifiers models."""
