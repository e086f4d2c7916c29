"""video_qa models."""
