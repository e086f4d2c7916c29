"""Proportional prioritised replay (Schaul et al., "Prioritized Experience Replay", ICLR 2016,
arXiv:1511.05952), as Rainbow uses it (Hessel et al. 2018; reference: Kaixhin/Rainbow ``memory.py``).

Slot ``i`` of the replay buffer is drawn with probability ``P(i) = p_i^alpha / sum_k p_k^alpha``;
a new transition gets the largest priority seen so far, so it is replayed at least once soon;
after an update each replayed slot's priority becomes its loss (``|TD error|``, or the
cross-entropy of the categorical loss). The importance-sampling weights
``w_i = (N P(i))^-beta`` correct the bias, divided by the batch's largest (Rainbow's
normalisation; the paper divides by the largest over the whole buffer), with ``beta`` annealed
to 1 over training by the runner.

A sum tree keeps the ``p^alpha``: leaves in ``tree[size:]``, each inner node the sum of its two
children, so an update and a draw cost ``log2(capacity)`` steps. A batch is drawn stratified: the
total is cut into ``B`` equal segments and one point drawn uniformly in each, and every point
descends the tree (all ``B`` at once, one level at a time).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from attnlab.errors import ConfigError


class PrioritySampler:
    """Priorities of a replay buffer's ``capacity`` slots; draws slots and their IS weights."""

    def __init__(self, capacity: int, alpha: float, eps: float = 1e-6) -> None:
        if capacity < 1 or alpha < 0 or eps <= 0:
            raise ConfigError(
                f"prioritised replay: need capacity >= 1, alpha >= 0, eps > 0; got {capacity}, {alpha}, {eps}"
            )
        self.capacity, self.alpha, self.eps = capacity, alpha, eps
        self.leaves = 1 << max(0, (capacity - 1).bit_length())  # a power of two >= capacity
        self.tree = np.zeros(2 * self.leaves, dtype=np.float64)  # tree[1] is the root
        self.max_priority = 1.0  # of any slot so far, before alpha

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def priorities(self) -> np.ndarray:
        """(capacity,) the stored ``p^alpha`` of every slot."""
        return self.tree[self.leaves : self.leaves + self.capacity].copy()

    def _set(self, slots: np.ndarray, values: np.ndarray) -> None:
        nodes = np.asarray(slots, dtype=np.int64) + self.leaves
        self.tree[nodes] = values
        nodes = np.unique(nodes // 2)
        while nodes[0] >= 1:  # refresh every ancestor from its children, one level at a time
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]
            nodes = np.unique(nodes // 2)

    def add(self, slot: int) -> None:
        """A new transition in ``slot``: the largest priority so far."""
        self._set(np.array([slot]), np.array([self.max_priority**self.alpha]))

    def update(self, slots: torch.Tensor, losses: torch.Tensor) -> None:
        """Replayed ``slots`` (B,) get priority ``losses`` (B,) (+ eps, so none falls to 0)."""
        priority = losses.detach().double().cpu().numpy() + self.eps
        self.max_priority = max(self.max_priority, float(priority.max()))
        self._set(slots.cpu().numpy(), priority**self.alpha)

    def sample(
        self, batch_size: int, size: int, beta: float, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch_size`` slots among the ``size`` filled ones, (B,) int64, and their IS weights (B,)."""
        total = self.total
        if total <= 0:
            raise ConfigError("prioritised replay: no transition to draw from")
        edges = np.arange(batch_size) * (total / batch_size)
        points = edges + rng.random(batch_size) * (total / batch_size)  # one per segment
        points = np.minimum(points, np.nextafter(total, 0))
        nodes = np.ones(batch_size, dtype=np.int64)
        while nodes[0] < self.leaves:  # descend: left if the point falls in the left child's mass
            left = 2 * nodes
            go_right = points >= self.tree[left]
            points = np.where(go_right, points - self.tree[left], points)
            nodes = np.where(go_right, left + 1, left)
        slots = np.minimum(nodes - self.leaves, size - 1)  # rounding can only land past the end
        probs = self.tree[slots + self.leaves] / total
        weights = (size * probs) ** -beta
        weights = weights / weights.max()
        return torch.from_numpy(slots), torch.from_numpy(weights.astype(np.float32))

    def state_dict(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "tree": torch.from_numpy(self.tree.copy()),
            "max_priority": self.max_priority,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["capacity"] != self.capacity:
            raise ConfigError(
                f"the checkpoint's priorities cover {state['capacity']} slots, the buffer {self.capacity}"
            )
        self.tree = state["tree"].numpy().copy()
        self.max_priority = float(state["max_priority"])
