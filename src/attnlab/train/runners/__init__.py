"""Runners that live in train/: the Lightning fit loop (``runner: lightning``, the default).

Other runners register from their own packages (``attnlab.rl.dqn``); the engine finds every
one through :data:`attnlab.catalog.RUNNERS`.
"""
