"""The events of a simulated scene that questions are about, and their causal structure.

* ``in``: an object not in view at the first frame comes into view (its first
  frame in view); ``out``: an object seen earlier is out of view at the last frame
  (the frame after it was last seen). Both only within the video's frames.
* ``collision``: a contact between two objects; those in the video's frames are
  observed, the later ones (held-back frames) are unseen.
* moving: speed above ``MOVING`` (friction stops objects exactly, so this is sharp).

Causes, as in CLEVRER's causal graph: the direct causes of a collision are, for
each of its two objects, the latest earlier event of that object (a collision, or
its entering the scene); "responsible for" means being an ancestor in that graph.
Counterfactuals re-simulate the scene without one object over the video's frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from attnlab.data.clevrer_lite.physics import simulate

if TYPE_CHECKING:
    from attnlab.data.clevrer_lite.config import ClevrerLiteConfig
    from attnlab.data.clevrer_lite.scene import Scene

MOVING = 1e-3  # units/s
_RANK = {"in": 0, "collision": 1, "out": 2}  # within one frame: entering comes first


@dataclass(frozen=True)
class Event:
    kind: str  # "in", "out" or "collision"
    frame: int
    order: int  # collisions: their place in the simulation's contacts, which are in the order resolved
    objects: tuple[int, ...]  # (k,) for in/out, (i, j) with i < j for collisions

    def key(self) -> tuple[int, int, int]:
        return (self.frame, _RANK[self.kind], self.order)


@dataclass(frozen=True)
class SceneEvents:
    observed: tuple[Event, ...]  # in the video, in time order
    unseen: tuple[Event, ...]  # collisions in the held-back frames, in time order
    moving: np.ndarray  # (F_total, K) bool
    seen: np.ndarray  # (F_total, K) bool, in view

    def of_kind(self, kind: str) -> list[Event]:
        return [e for e in self.observed if e.kind == kind]


def scene_events(scene: Scene) -> SceneEvents:
    t = scene.num_frames
    seen = scene.in_view
    events: list[Event] = []
    for k in range(scene.num_objects):
        frames = np.nonzero(seen[:t, k])[0]
        if len(frames) and frames[0] > 0:
            events.append(Event("in", int(frames[0]), 0, (k,)))
        if len(frames) and frames[-1] < t - 1:
            events.append(Event("out", int(frames[-1]) + 1, 0, (k,)))
    collisions = [Event("collision", c.frame, n, (c.i, c.j)) for n, c in enumerate(scene.trajectory.contacts)]
    observed = sorted(events + [e for e in collisions if e.frame < t], key=Event.key)
    unseen = sorted((e for e in collisions if e.frame >= t), key=Event.key)
    speed = np.linalg.norm(scene.trajectory.velocities, axis=-1)
    moving = (speed > MOVING) & scene.trajectory.active
    return SceneEvents(tuple(observed), tuple(unseen), moving, seen)


def direct_causes(events: tuple[Event, ...], target: Event) -> list[Event]:
    causes = []
    for k in target.objects:
        earlier = [
            e for e in events if e.key() < target.key() and k in e.objects and e.kind in ("in", "collision")
        ]
        if earlier and earlier[-1] not in causes:
            causes.append(earlier[-1])
    return causes


def ancestors(events: tuple[Event, ...], target: Event) -> set[Event]:
    """Every event ``target`` depends on through chains of direct causes."""
    found: set[Event] = set()
    todo = [target]
    while todo:
        for cause in direct_causes(events, todo.pop()):
            if cause not in found:
                found.add(cause)
                todo.append(cause)
    return found


def pair_counts(events: tuple[Event, ...] | list[Event]) -> dict[tuple[int, int], int]:
    """How often each pair (i < j) collides among ``events``."""
    counts: dict[tuple[int, int], int] = {}
    for e in events:
        if e.kind == "collision":
            pair = (e.objects[0], e.objects[1])
            counts[pair] = counts.get(pair, 0) + 1
    return counts


def counterfactual_pairs(scene: Scene, config: ClevrerLiteConfig, removed: int) -> set[tuple[int, int]]:
    """Pairs (i < j, scene indices) that collide in the video's frames when object
    ``removed`` was never there."""
    # one frame more, so that a contact at the very end gets the frame it would get
    # in the real scene's longer run (and falls on the same side of the video's end)
    trajectory = simulate(scene.initial.without(removed), scene.num_frames + 1, config.fps, config.physics)
    keep = [k for k in range(scene.num_objects) if k != removed]  # new index -> scene index
    return {(keep[c.i], keep[c.j]) for c in trajectory.contacts if c.frame < scene.num_frames}
