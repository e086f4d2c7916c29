"""Datamodules, generators and loaders (registered lazily: :mod:`attnlab.catalog`)."""
