"""Reinforcement learning: environments and agents' training loops (runners outside Lightning).

Needs the ``rl`` extra (gymnasium). Networks live in ``attnlab.models.rl``, losses in
``attnlab.objectives``; each loop here is a runner a recipe names (``runner: dqn``).
"""
