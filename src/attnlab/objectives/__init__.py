"""Losses and training targets as pure functions (no modules, no state)."""
