"""object_centric models."""
