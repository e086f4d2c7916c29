"""abn models."""
