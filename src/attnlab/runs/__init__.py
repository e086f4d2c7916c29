"""Run folders, atomic checkpoints, resolved configs and weights loading:
the low layer every runner and the CLI share."""
