"""Networks of reinforcement-learning agents (their training loops live in attnlab.rl)."""
