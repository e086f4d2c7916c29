"""Training: tasks (LightningModules), callbacks and the run engine (listed in :mod:`attnlab.catalog`)."""
