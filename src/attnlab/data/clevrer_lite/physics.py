"""Rigid discs sliding on the ground plane: friction, elastic collisions, late entries.

CLEVRER simulates its objects with Bullet; here every object is a disc of one radius
on the plane z = 0 (spheres, cubes and cylinders alike: their footprints are close
to that disc), which is enough for the events the questions are about: who hits
whom, when, and what would have happened otherwise.

* Kinetic friction decelerates every moving object by a constant ``friction``
  (mu * g, units/s^2) until it stops: speed falls linearly, as Coulomb friction does.
* Collisions are impulses along the line of centres with ``restitution`` 1 by
  default, i.e. elastic: momentum and kinetic energy are conserved exactly; the
  tangential components are untouched (no spin, no tangential friction).
* An object with ``enter_step > 0`` is absent (no motion, no contact, not drawn)
  until that sub-step; then it slides in from where it was placed.
* Optional walls at ``+-arena_half_size`` reflect objects; CLEVRER has none.

Motion between contacts is integrated exactly (constant deceleration along a straight
line), so a frame in which no two objects can meet is one step; the other frames
take ``substeps`` steps, each followed by contact detection and resolution. The
state of frame ``f`` is the state at time ``f / fps``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnlab.errors import ConfigError


@dataclass(frozen=True)
class PhysicsConfig:
    """Units are scene units (an object's radius is ``radius``) and seconds."""

    radius: float = 0.5
    friction: float = 0.3  # deceleration of a sliding object, units/s^2
    restitution: float = 1.0  # 1: elastic
    substeps: int = 8  # integration steps per video frame
    walls: bool = False
    arena_half_size: float = 4.5  # where the walls are, when there are walls

    def __post_init__(self) -> None:
        if not 0.05 <= self.radius <= 2.0:
            raise ConfigError(f"physics radius must be in [0.05, 2], got {self.radius}")
        if self.friction < 0 or not 0 <= self.restitution <= 1:
            raise ConfigError(
                "physics needs friction >= 0 and 0 <= restitution <= 1, "
                f"got {self.friction}, {self.restitution}"
            )
        if not 1 <= self.substeps <= 64:
            raise ConfigError(f"physics substeps must be in [1, 64], got {self.substeps}")
        if self.arena_half_size <= 2 * self.radius:
            raise ConfigError(f"physics arena_half_size must exceed 2 * radius, got {self.arena_half_size}")


@dataclass(frozen=True)
class InitialState:
    """Where the K objects start and how they move."""

    positions: np.ndarray  # (K, 2) float64, x and y on the ground
    velocities: np.ndarray  # (K, 2) float64, units/s
    enter_steps: np.ndarray  # (K,) int64, sub-step at which the object appears (0: from the start)
    masses: np.ndarray  # (K,) float64

    @property
    def num_objects(self) -> int:
        return int(self.positions.shape[0])

    def without(self, k: int) -> InitialState:
        """The same scene with object ``k`` removed (for counterfactuals)."""
        keep = np.arange(self.num_objects) != k
        return InitialState(
            self.positions[keep], self.velocities[keep], self.enter_steps[keep], self.masses[keep]
        )


@dataclass(frozen=True)
class Contact:
    """One collision: objects ``i < j`` touched during sub-step ``step``."""

    step: int
    frame: int  # the frame nearest to the contact
    i: int
    j: int
    location: tuple[float, float]  # the contact point on the ground


@dataclass(frozen=True)
class Trajectory:
    positions: np.ndarray  # (F, K, 2) float64, per frame
    velocities: np.ndarray  # (F, K, 2) float64
    active: np.ndarray  # (F, K) bool, present in the scene
    contacts: tuple[Contact, ...]  # in the order they happened

    @property
    def num_frames(self) -> int:
        return int(self.positions.shape[0])


def advance(x: np.ndarray, v: np.ndarray, active: np.ndarray, decel: float, dt: float) -> None:
    """Move the ``active`` (K,) discs for ``dt`` seconds in place, exactly: under a
    constant deceleration each slides straight on, speed s falling to max(s - a dt, 0),
    covering s dt - a dt^2 / 2 (or s^2 / 2a if it stops). Exact kinematics make one
    step of 2 dt the same as two steps of dt, which lets ``simulate`` skip sub-steps."""
    speed = np.hypot(v[:, 0], v[:, 1])  # (K,)
    stops = speed <= decel * dt
    dist = np.where(stops, speed * speed / (2 * max(decel, 1e-300)), speed * dt - 0.5 * decel * dt * dt)
    inv = np.where(active & (speed > 0), 1.0 / np.maximum(speed, 1e-300), 0.0)
    x += v * (dist * inv)[:, None]
    v *= np.where(active, np.maximum(speed - decel * dt, 0.0) * inv, 1.0)[:, None]


def collide_pair(
    x: np.ndarray, v: np.ndarray, m: np.ndarray, i: int, j: int, radius: float, restitution: float
) -> bool:
    """Resolve a contact between discs ``i`` and ``j`` in place; True if they were approaching.

    The impulse along the unit normal n (from i to j) is J = -(1 + e) (v_rel . n) /
    (1/m_i + 1/m_j) with v_rel = v_j - v_i; e = 1 conserves kinetic energy. Overlap
    is removed by moving both apart along n in inverse proportion to their masses.
    """
    delta = x[j] - x[i]
    dist = float(np.hypot(delta[0], delta[1]))
    n = delta / dist if dist > 1e-12 else np.array([1.0, 0.0])
    approach = float((v[j] - v[i]) @ n)
    inv_i, inv_j = 1.0 / m[i], 1.0 / m[j]
    if approach < 0:
        impulse = -(1.0 + restitution) * approach / (inv_i + inv_j)
        v[i] -= impulse * inv_i * n
        v[j] += impulse * inv_j * n
    overlap = 2 * radius - dist
    if overlap > 0:
        x[i] -= overlap * inv_i / (inv_i + inv_j) * n
        x[j] += overlap * inv_j / (inv_i + inv_j) * n
    return approach < 0


def _bounce_walls(x: np.ndarray, v: np.ndarray, active: np.ndarray, limit: float) -> None:
    """Reflect active discs off the walls at +-limit (limit already shrunk by the radius)."""
    out_lo, out_hi = (x < -limit) & active[:, None], (x > limit) & active[:, None]
    v[out_lo] = np.abs(v[out_lo])
    v[out_hi] = -np.abs(v[out_hi])
    x[out_lo] = -limit
    x[out_hi] = limit


class _World:
    """The mutable state of one simulation and the contacts found so far."""

    def __init__(self, initial: InitialState, config: PhysicsConfig, num_frames: int):
        self.c, self.num_frames, self.enter_steps = config, num_frames, initial.enter_steps
        self.x = initial.positions.astype(np.float64).copy()  # (K, 2)
        self.v = initial.velocities.astype(np.float64).copy()  # (K, 2)
        self.m = initial.masses.astype(np.float64)
        self.i, self.j = np.triu_indices(initial.num_objects, 1)  # all pairs i < j, (P,) each
        self.contacts: list[Contact] = []
        self.last_contact: dict[tuple[int, int], int] = {}

    def at_rest(self, step: int) -> bool:
        """Nothing moves and nothing is still to come: the scene will not change any more."""
        return bool((self.enter_steps <= step).all() and not self.v.any())

    def quiet(self, step: int, span: float) -> bool:
        """Nothing enters, no two discs can touch and none can reach a wall within
        ``span`` seconds from sub-step ``step``."""
        if ((self.enter_steps > step) & (self.enter_steps < step + self.c.substeps)).any():
            return False
        active = self.enter_steps <= step
        reach = np.hypot(self.v[:, 0], self.v[:, 1]) * span * active  # (K,) bound on the distance moved
        i, j, x = self.i, self.j, self.x
        both = reach[i] + reach[j]  # two resting discs never collide, even when touching
        gap = np.hypot(x[i, 0] - x[j, 0], x[i, 1] - x[j, 1]) - both
        if ((gap <= 2 * self.c.radius) & (both > 0) & active[i] & active[j]).any():
            return False
        limit = self.c.arena_half_size - self.c.radius
        return not self.c.walls or bool((np.abs(x).max(axis=1) + reach < limit).all())

    def touching(self, active: np.ndarray) -> list[tuple[int, int]]:
        """Pairs (i < j) of active discs closer than a diameter, in a fixed order."""
        i, j, x, r = self.i, self.j, self.x, self.c.radius
        d = x[i] - x[j]  # (P, 2)
        close = (d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] < 4 * r * r) & active[i] & active[j]
        return [(int(i[h]), int(j[h])) for h in np.flatnonzero(close)]

    def substep(self, step: int, dt: float) -> None:
        c, active = self.c, self.enter_steps <= step
        advance(self.x, self.v, active, c.friction, dt)
        for i, j in self.touching(active):
            hit = collide_pair(self.x, self.v, self.m, i, j, c.radius, c.restitution)
            # one event per contact: a resting or jostled pair can be pushed again a
            # few steps later, which is still the same collision
            if hit and step - self.last_contact.get((i, j), -(10**9)) > c.substeps:
                where = (self.x[i] + self.x[j]) / 2
                frame = min((step + c.substeps // 2) // c.substeps, self.num_frames - 1)
                self.contacts.append(Contact(step, frame, i, j, (float(where[0]), float(where[1]))))
            if hit:
                self.last_contact[(i, j)] = step
        if c.walls:
            _bounce_walls(self.x, self.v, active, c.arena_half_size - c.radius)


def simulate(initial: InitialState, num_frames: int, fps: float, config: PhysicsConfig) -> Trajectory:
    """Run the scene for ``num_frames`` frames. A frame in which nothing can touch is
    one exact step; the others take ``substeps`` steps with contact handling."""
    k, sub, frame_dt = initial.num_objects, config.substeps, 1.0 / fps
    world = _World(initial, config, num_frames)
    positions = np.zeros((num_frames, k, 2))
    velocities = np.zeros((num_frames, k, 2))
    active = np.zeros((num_frames, k), dtype=bool)
    for f in range(num_frames):
        step = f * sub
        positions[f], velocities[f], active[f] = world.x, world.v, initial.enter_steps <= step
        if world.at_rest(step):  # the rest of the video is this frame
            positions[f:], velocities[f:], active[f:] = world.x, world.v, active[f]
            break
        if world.quiet(step, frame_dt):
            advance(world.x, world.v, active[f], config.friction, frame_dt)
            continue
        for s in range(step, step + sub):
            world.substep(s, frame_dt / sub)
    return Trajectory(positions, velocities, active, tuple(world.contacts))
