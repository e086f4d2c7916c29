"""An indoor navigation simulator for the Action Q-Transformer theses (seed 004): numpy only,
a batch of environments stepped in one call, and a gymnasium wrapper for one environment.

The world (``map_size`` metres square) is made of line segments, each of a semantic class:
the outer walls and, with ``rooms=2``, an inner wall with a door split it into two rooms;
``furniture`` boxes and ``people`` (small boxes) stand at random places. A round robot
(``radius``) has a continuous position and heading and four actions: 0 stop (stays put),
1 forward ``forward_m``, 2 turn left, 3 turn right (``turn_deg``). A forward step that would
bring the robot within ``radius`` of a segment is a collision: the robot stays and the
collision is counted.

Each episode draws a start, a final goal and ``subgoals`` intermediate goals in free space;
the robot's target is the next goal not yet reached (within ``goal_radius``). Success: the
final goal reached within ``max_steps`` steps with at most ``max_collisions`` collisions; more
collisions end the episode as a failure. Reward: the decrease of the distance to the target,
``+1`` per sub-goal, ``+10`` at the final goal, ``-0.5`` per collision, ``-0.01`` per step.

The view is a first-person 2.5D rendering by ray casting (one ray per image column over a
``fov_deg`` horizontal field, pinhole camera at ``camera_height``): the nearest segment hit
fills the rows between its base and its class's height; floor below, ceiling above. It gives a
semantic image (class ids, coloured by :data:`PALETTE`) and a depth image (distance along the
viewing axis, metres). The observation is flat, float32: the ``size x size`` class ids
(row-major) then the target as (distance / map_size, sin, cos of its bearing from the heading).

Sketch mode (``sketch``, the second thesis): the goals are a sketch's waypoints (equal spacing,
unequal spacing, or a curve; or read from a file by :func:`load_waypoints`), spread evenly over the
episode as the thesis's "position of the sketch at each step": waypoint k is the target of steps
k P + 1 .. (k + 1) P, P = ``max_steps // K`` (the last one to the end), whether the robot has reached
the one before or not. The reward is minus the distance to the step's waypoint;
:func:`displacement_errors` gives ADE / FDE. As the thesis's, an episode ends only at ``max_steps``
(collisions are counted, nothing else ends it). Between the class ids and the target, the
observation holds what the sketch networks read (:data:`POSE_FEATURES` + 2 K + 1 numbers): the
robot's pose (x / map_size, y / map_size, sin, cos of its heading), the K waypoints (x, y) /
map_size, and the index of the next step's waypoint.

Deviations from the theses (their Unity scenes are out of reach): a 2.5D ray-cast world instead of
3D scenes; ``stop`` does not end the episode; people do not move.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from attnlab.errors import ConfigError, InputError, unknown

CEILING, FLOOR, WALL, FURNITURE, PERSON = range(5)
CLASS_NAMES = ("ceiling", "floor", "wall", "furniture", "person")
PALETTE = np.array(  # semantic colours (RGB) of the classes above
    [[30, 30, 30], [128, 128, 128], [70, 110, 230], [60, 180, 75], [230, 50, 50]], dtype=np.uint8
)
HEIGHTS = np.array([0.0, 0.0, 2.5, 0.8, 1.7], dtype=np.float32)  # metres, per class
CEILING_HEIGHT = 2.5
NUM_ACTIONS = 4
SKETCH_KINDS = ("none", "equal", "unequal", "curve", "mixed", "file")
ACTION_NAMES = ("stop", "forward", "turn left", "turn right")
GOAL_FEATURES = 3  # distance / map_size, sin, cos of the target's bearing
POSE_FEATURES = 4  # sketch mode: x / map_size, y / map_size, sin, cos of the heading


@dataclass(frozen=True)
class NavConfig:
    size: int = 84  # image side, pixels (one ray per column)
    fov_deg: float = 90.0
    camera_height: float = 0.5
    map_size: float = 6.0  # metres
    rooms: int = 2  # 1: one room; 2: an inner wall with a door
    door_width: float = 1.2
    furniture: int = 3
    people: int = 2
    subgoals: int = 0
    max_steps: int = 100
    max_collisions: int = 5
    forward_m: float = 0.25
    turn_deg: float = 30.0
    radius: float = 0.2  # must exceed forward_m / 2, so that no step jumps through a wall
    goal_radius: float = 0.4
    goal_distance: tuple[float, float] = (1.5, 4.5)  # start -> final goal, metres
    # sketch mode: the goals are the waypoints of a sketch and the reward is minus the distance
    # to the current waypoint; "mixed" draws equal : unequal : curve as 4 : 2 : 4 (the thesis's 10)
    sketch: str = "none"  # none | equal | unequal | curve | mixed | file
    waypoints: int = 8  # per sketch (a waypoints file sets its own)
    waypoint_spacing: float = 0.5  # metres between waypoints (the mean for "unequal")
    fixed_waypoints: tuple[tuple[float, float], ...] = ()  # sketch="file": start, then the waypoints
    # >= 0: every episode in the one layout this seed draws (the thesis tests its sketches in one
    # scene); -1: a new layout every episode
    scene_seed: int = -1

    def __post_init__(self) -> None:
        if self.size < 8 or not 10.0 <= self.fov_deg < 180.0 or self.rooms not in (1, 2):
            raise ConfigError(f"navigation needs size >= 8, fov in [10, 180) and rooms 1 or 2, got {self}")
        if min(self.furniture, self.people, self.subgoals, self.max_collisions) < 0 or self.max_steps < 1:
            raise ConfigError(f"navigation counts must be >= 0 (max_steps >= 1), got {self}")
        if not 0 < self.forward_m < 2 * self.radius or self.map_size < 3.0:
            raise ConfigError(f"navigation needs 0 < forward_m < 2 * radius and map_size >= 3, got {self}")

        if self.scene_seed < -1:
            raise ConfigError(f"scene_seed must be -1 (a layout per episode) or >= 0, got {self.scene_seed}")
        if self.sketch not in SKETCH_KINDS:
            raise unknown("sketch kind", self.sketch, SKETCH_KINDS)
        if self.sketch == "file" and len(self.fixed_waypoints) < 2:
            raise ConfigError("sketch='file' needs fixed_waypoints: a start and at least one waypoint")
        if self.sketch not in ("none", "file") and (self.waypoints < 1 or self.waypoint_spacing <= 0):
            raise ConfigError(f"a sketch needs waypoints >= 1 and waypoint_spacing > 0, got {self}")
        if self.sketch != "none" and self.num_goals > self.max_steps:
            raise ConfigError(f"a sketch of {self.num_goals} waypoints needs max_steps >= {self.num_goals}")

    @property
    def obs_dim(self) -> int:
        return self.size * self.size + self.sketch_dim + GOAL_FEATURES

    @property
    def steps_per_waypoint(self) -> int:
        """Sketch mode: the steps each waypoint is the target for (P; the last one also the rest)."""
        return self.max_steps // self.num_goals

    @property
    def sketch_dim(self) -> int:
        """Observation entries of sketch mode: the pose, the waypoints and the step's waypoint index."""
        return 0 if self.sketch == "none" else POSE_FEATURES + 2 * self.num_goals + 1

    @property
    def num_goals(self) -> int:
        """Goals per episode: sub-goals and the final goal, or a sketch's waypoints."""
        if self.sketch == "file":
            return len(self.fixed_waypoints) - 1
        return self.subgoals + 1 if self.sketch == "none" else self.waypoints

    @property
    def num_segments(self) -> int:
        return 4 + 2 * (self.rooms - 1) + 4 * (self.furniture + self.people)


def segment_distance(points: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Distance from each point (N, 2) to each of its segments (N, S, 4) -> (N, S)."""
    a, b = segments[..., :2], segments[..., 2:]  # (N, S, 2)
    e = b - a
    w = points[:, None, :] - a
    t = np.clip((w * e).sum(-1) / np.maximum((e * e).sum(-1), 1e-12), 0.0, 1.0)  # (N, S)
    nearest = a + t[..., None] * e
    return np.sqrt(((points[:, None, :] - nearest) ** 2).sum(-1))


def cast_rays(
    pos: np.ndarray, angles: np.ndarray, segments: np.ndarray, classes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distance along each ray (N, W) to the nearest segment it hits, and that segment's class.

    ``pos`` (N, 2), ``angles`` (N, W) world angles, ``segments`` (N, S, 4), ``classes`` (N, S).
    Solves ``p + t d = a + u e`` by 2D cross products; a ray that hits nothing gets inf and CEILING.
    """
    f32 = np.float32
    dx, dy = np.cos(angles).astype(f32)[..., None], np.sin(angles).astype(f32)[..., None]  # (N, W, 1)
    seg = segments.astype(f32)[:, None]  # (N, 1, S, 4)
    ex, ey = seg[..., 2] - seg[..., 0], seg[..., 3] - seg[..., 1]  # (N, 1, S)
    p = pos.astype(f32)[:, None, None, :]  # (N, 1, 1, 2)
    wx, wy = seg[..., 0] - p[..., 0], seg[..., 1] - p[..., 1]  # (N, 1, S)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / (dx * ey - dy * ex)  # (N, W, S); inf for a ray parallel to the segment
        t = (wx * ey - wy * ex) * inv  # along the ray
        u = (wx * dy - wy * dx) * inv  # along the segment
        hit = (t > 1e-6) & (u >= 0.0) & (u <= 1.0)  # NaN and inf (parallel) compare False
    t = np.where(hit, t, f32(np.inf))
    nearest = t.argmin(axis=-1)  # (N, W)
    dist = np.take_along_axis(t, nearest[..., None], axis=-1)[..., 0].astype(np.float64)
    cls = np.take_along_axis(classes, nearest, axis=-1)
    return dist, np.where(np.isfinite(dist), cls, CEILING)


@dataclass
class Camera:
    """Pinhole camera of the robot: one ray per column, square pixels."""

    size: int
    fov_deg: float
    height: float
    offsets: np.ndarray = field(init=False)  # (W,) column angle relative to the heading, left first
    focal: float = field(init=False)
    rows: np.ndarray = field(init=False)  # (H,) pixel-centre row coordinate relative to the horizon

    def __post_init__(self) -> None:
        half = math.radians(self.fov_deg) / 2
        self.focal = (self.size / 2) / math.tan(half)
        cols = np.arange(self.size) + 0.5 - self.size / 2  # (W,) right of centre is positive
        self.offsets = -np.arctan(cols / self.focal)
        self.rows = np.arange(self.size) + 0.5 - self.size / 2  # (H,) below the horizon is positive

    def extents(self, dist: np.ndarray, cls: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per column (N, W): depth along the viewing axis, and the rows of the hit's top and base."""
        z = (dist * np.cos(self.offsets)).astype(np.float32)  # (N, W)
        z = np.where(np.isfinite(z), np.maximum(z, 1e-3), np.float32(1e6))
        top = -self.focal * (HEIGHTS[cls] - self.height) / z  # (N, W) row of the object's top
        bottom = self.focal * self.height / z  # (N, W) row of its base
        return z, top.astype(np.float32), bottom.astype(np.float32)

    def semantic(self, dist: np.ndarray, cls: np.ndarray) -> np.ndarray:
        """(N, H, W) uint8 class ids: ceiling above the hit, its class on it, floor below."""
        _, top, bottom = self.extents(dist, cls)
        rows = self.rows.astype(np.float32)[None, :, None]  # (1, H, 1)
        obj = cls.astype(np.uint8)[:, None, :]  # (N, 1, W)
        image = np.where(rows < top[:, None, :], np.uint8(CEILING), obj)  # (N, H, W)
        return np.where(rows > bottom[:, None, :], np.uint8(FLOOR), image)

    def depth(self, dist: np.ndarray, cls: np.ndarray) -> np.ndarray:
        """(N, H, W) float32 metres along the viewing axis: the hit, the floor or the ceiling."""
        z, top, bottom = self.extents(dist, cls)
        rows = self.rows.astype(np.float32)[None, :, None]  # (1, H, 1)
        floor = np.float32(self.focal * self.height) / np.maximum(rows, 1e-3)  # (1, H, 1)
        ceiling = np.float32(self.focal * (CEILING_HEIGHT - self.height)) / np.maximum(-rows, 1e-3)
        image = np.where(rows < top[:, None, :], ceiling, z[:, None, :])
        return np.where(rows > bottom[:, None, :], floor, image).astype(np.float32)

    def back_project(self, depth: np.ndarray, pos: np.ndarray, heading: float) -> np.ndarray:
        """(H, W) depth along the viewing axis of a camera at ``pos`` (2,) facing ``heading`` ->
        (H, W, 3) world points x, y, height: each pixel's centre pushed out to its depth."""
        z = depth.astype(np.float64)
        cols = np.arange(self.size) + 0.5 - self.size / 2  # (W,) right of centre is positive
        right = z * cols[None, :] / self.focal  # (H, W) metres right of the heading
        height = self.height - z * self.rows[:, None] / self.focal  # rows below the horizon are lower
        forward = np.array([math.cos(heading), math.sin(heading)])
        rightward = np.array([math.sin(heading), -math.cos(heading)])  # the heading turned clockwise
        xy = pos + z[..., None] * forward + right[..., None] * rightward  # (H, W, 2)
        return np.concatenate([xy, height[..., None]], -1)


@dataclass
class StepResult:
    obs: np.ndarray  # (N, obs_dim) float32 after the step
    rewards: np.ndarray  # (N,) float32
    terminated: np.ndarray  # (N,) bool: final goal reached or too many collisions
    truncated: np.ndarray  # (N,) bool: max_steps reached
    success: np.ndarray  # (N,) bool: final goal reached with collisions <= max_collisions
    collisions: np.ndarray  # (N,) int: collisions so far in the episode


class NavigationBatch:
    """``num_envs`` navigation environments stepped in one numpy call.

    Every environment draws its layouts from its own generator (``rngs[i]``), so environment i of a
    batch and a single environment seeded alike take the same episodes step for step.
    """

    def __init__(self, config: NavConfig, num_envs: int) -> None:
        if num_envs < 1:
            raise ConfigError(f"num_envs must be >= 1, got {num_envs}")
        self.config, self.num_envs = config, num_envs
        self.camera = Camera(config.size, config.fov_deg, config.camera_height)
        n, s, k = num_envs, config.num_segments, config.num_goals
        self.segments = np.zeros((n, s, 4), dtype=np.float64)
        self.classes = np.zeros((n, s), dtype=np.int64)
        self.pos = np.zeros((n, 2))
        self.heading = np.zeros(n)
        self.goals = np.zeros((n, k, 2))  # sub-goals then the final goal
        self.target = np.zeros(n, dtype=np.int64)  # index of the goal being sought (sketch: the step's)
        self.steps = np.zeros(n, dtype=np.int64)
        self.collisions = np.zeros(n, dtype=np.int64)
        self.kinds = ["none"] * n  # the sketch kind of each environment's episode ("mixed" draws one)
        self.rngs = [np.random.default_rng(i) for i in range(n)]
        self.semantic = np.zeros((n, config.size, config.size), dtype=np.uint8)
        self.hits = (np.zeros((n, config.size)), np.zeros((n, config.size), dtype=np.int64))  # per column

    # -- episodes ------------------------------------------------------------------
    def seed(self, seeds: list[int]) -> None:
        if len(seeds) != self.num_envs:
            raise ConfigError(f"{len(seeds)} seeds for {self.num_envs} environments")
        self.rngs = [np.random.default_rng(s) for s in seeds]

    def reset(self) -> np.ndarray:
        for i in range(self.num_envs):
            self.reset_one(i, self.rngs[i])
        return self.observe()

    def reset_one(self, i: int, rng: np.random.Generator) -> None:
        """A new layout (or the scene's), start, goals for environment ``i`` (drawn from ``rng``)."""
        scene = self.config.scene_seed
        segments, classes = random_layout(self.config, rng if scene < 0 else np.random.default_rng(scene))
        self.segments[i], self.classes[i] = segments, classes
        if self.config.sketch == "none":
            start, goals = random_route(self.config, segments, rng)
            heading = rng.uniform(-math.pi, math.pi)
        else:
            start, goals, heading, self.kinds[i] = sketch_route(self.config, segments, rng)
        self.pos[i], self.goals[i], self.heading[i] = start, goals, heading
        self.target[i] = self.steps[i] = self.collisions[i] = 0

    # -- dynamics ------------------------------------------------------------------
    def step(self, actions: np.ndarray, *, autoreset: bool = False) -> StepResult:
        """One step of every environment; ``autoreset`` starts a new episode where one ended
        (the returned observation is then the new episode's first)."""
        c = self.config
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or not np.isin(actions, range(NUM_ACTIONS)).all():
            raise ConfigError(f"actions must be {self.num_envs} integers in 0..3, got {actions!r}")
        before = self.target_distance()
        turn = math.radians(c.turn_deg)
        self.heading = np.where(actions == 2, self.heading + turn, self.heading)
        self.heading = np.where(actions == 3, self.heading - turn, self.heading)
        self.heading = (self.heading + math.pi) % (2 * math.pi) - math.pi
        moving = actions == 1
        ahead = self.pos + c.forward_m * np.stack([np.cos(self.heading), np.sin(self.heading)], axis=-1)
        blocked = segment_distance(ahead, self.segments).min(axis=1) < c.radius
        self.pos = np.where((moving & ~blocked)[:, None], ahead, self.pos)
        bumped = moving & blocked
        self.collisions += bumped
        self.steps += 1
        reached = self.target_distance() < c.goal_radius
        final = reached & (self.target == c.num_goals - 1)
        if c.sketch == "none":
            bonus = np.where(final, 10.0, np.where(reached, 1.0, 0.0))
            rewards = before - self.target_distance() + bonus - 0.5 * bumped - 0.01
            self.target = np.where(reached & ~final, self.target + 1, self.target)
        else:  # the sketch thesis's reward: minus the distance to the step's waypoint
            rewards = -self.target_distance()
            # a schedule, not "the next one once this one is reached": with that rule, reaching a
            # waypoint made the next reward worse (the next one is farther), and an agent learnt to
            # stay at the start (docs/rl_navigation.md)
            self.target = np.minimum(self.steps // c.steps_per_waypoint, c.num_goals - 1)
        crashed = self.collisions > c.max_collisions
        # the sketch thesis ends episodes only at max_steps; with its reward, never positive, any
        # earlier end (a sixth collision) would be a reward the agent learns to seek
        terminated = (final | crashed) if c.sketch == "none" else np.zeros(self.num_envs, dtype=bool)
        truncated = ~terminated & (self.steps >= c.max_steps)
        result = StepResult(
            obs=np.empty(0),
            rewards=rewards.astype(np.float32),
            terminated=terminated,
            truncated=truncated,
            success=final & ~crashed,
            collisions=self.collisions.copy(),
        )
        if autoreset:
            for i in np.flatnonzero(terminated | truncated):
                self.reset_one(int(i), self.rngs[i])
        result.obs = self.observe()
        return result

    def target_distance(self) -> np.ndarray:
        goal = self.goals[np.arange(self.num_envs), self.target]  # (N, 2)
        return np.sqrt(((goal - self.pos) ** 2).sum(-1))

    # -- observation ---------------------------------------------------------------
    def observe(self) -> np.ndarray:
        """Render every view and return the flat observations (N, size * size + 3)."""
        angles = self.heading[:, None] + self.camera.offsets[None, :]  # (N, W)
        dist, cls = cast_rays(self.pos, angles, self.segments, self.classes)
        self.hits = (dist, cls)
        self.semantic = self.camera.semantic(dist, cls)
        goal = self.goals[np.arange(self.num_envs), self.target] - self.pos  # (N, 2)
        bearing = np.arctan2(goal[:, 1], goal[:, 0]) - self.heading
        feats = np.stack(
            [np.sqrt((goal**2).sum(-1)) / self.config.map_size, np.sin(bearing), np.cos(bearing)], axis=-1
        )
        pixels = self.config.size**2
        out = np.empty((self.num_envs, self.config.obs_dim), dtype=np.float32)
        out[:, :pixels] = self.semantic.reshape(self.num_envs, pixels)  # (N, H*W) row-major, one cast
        out[:, pixels:-GOAL_FEATURES] = self.sketch_features()  # (N, 0) outside sketch mode
        out[:, -GOAL_FEATURES:] = feats  # last, where readers of the plain layout find the goal
        return out

    def sketch_features(self) -> np.ndarray:
        """(N, sketch_dim): pose (x, y / map_size, sin, cos of the heading), waypoints / map_size
        (row-major (K, 2)), the index of the next step's waypoint; (N, 0) outside sketch mode."""
        n, m = self.num_envs, self.config.map_size
        if self.config.sketch == "none":
            return np.zeros((n, 0))
        pose = np.stack([self.pos[:, 0] / m, self.pos[:, 1] / m, np.sin(self.heading), np.cos(self.heading)])
        waypoints = self.goals.reshape(n, -1) / m  # (N, 2K)
        return np.concatenate([pose.T, waypoints, self.target[:, None].astype(np.float64)], axis=1)

    @property
    def depth(self) -> np.ndarray:
        """(N, H, W) float32 depth images of the current views (rendered when asked)."""
        return self.camera.depth(*self.hits)

    def rgb(self) -> np.ndarray:
        """(N, H, W, 3) uint8: the semantic images in their colours."""
        return PALETTE[self.semantic]


def box_segments(cx: float, cy: float, w: float, h: float) -> np.ndarray:
    """The four sides (4, 4) of an axis-aligned box centred at (cx, cy)."""
    x0, x1, y0, y1 = cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2
    return np.array([[x0, y0, x1, y0], [x1, y0, x1, y1], [x1, y1, x0, y1], [x0, y1, x0, y0]])


def random_layout(config: NavConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Segments (S, 4) and classes (S,): walls, inner wall with a door, furniture, people."""
    m = config.map_size
    parts = [box_segments(m / 2, m / 2, m, m)]
    classes = [WALL] * 4
    if config.rooms == 2:
        x = rng.uniform(0.4 * m, 0.6 * m)
        door = rng.uniform(0.5, m - 0.5 - config.door_width)
        parts.append(np.array([[x, 0.0, x, door], [x, door + config.door_width, x, m]]))
        classes += [WALL, WALL]
    for cls, count, lo, hi in ((FURNITURE, config.furniture, 0.4, 1.0), (PERSON, config.people, 0.35, 0.45)):
        for _ in range(count):
            w, h = rng.uniform(lo, hi, size=2)
            cx, cy = rng.uniform(0.3 + w / 2, m - 0.3 - w / 2), rng.uniform(0.3 + h / 2, m - 0.3 - h / 2)
            parts.append(box_segments(cx, cy, w, h))
            classes += [cls] * 4
    return np.concatenate(parts), np.array(classes, dtype=np.int64)


def free_point(config: NavConfig, segments: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A point at least 1.5 radii from every segment and inside no box (rejection sampling)."""
    m, clearance = config.map_size, 1.5 * config.radius
    boxes = segments[4 + 2 * (config.rooms - 1) :].reshape(-1, 4, 4)  # (K, 4 sides, 4)
    for _ in range(10_000):
        p = rng.uniform(clearance, m - clearance, size=2)
        if segment_distance(p[None], segments[None]).min() < clearance:
            continue
        lo, hi = boxes[:, 0, :2], boxes[:, 1, 2:]  # corners (x0, y0), (x1, y1)
        if not ((p > lo) & (p < hi)).all(axis=1).any():
            return p
    raise ConfigError(f"no free space for the robot in a {m} m map with {config}")


def random_route(
    config: NavConfig, segments: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A start (2,) and goals (subgoals + 1, 2), the final goal within ``goal_distance`` of the start."""
    start = free_point(config, segments, rng)
    lo, hi = config.goal_distance
    for _ in range(1_000):
        final = free_point(config, segments, rng)
        if lo <= float(np.linalg.norm(final - start)) <= hi:
            break
    subgoals = [free_point(config, segments, rng) for _ in range(config.subgoals)]
    return start, np.array([*subgoals, final])


def sketch_points(
    kind: str, start: np.ndarray, direction: float, config: NavConfig, rng: np.random.Generator
) -> np.ndarray:
    """Waypoints (K, 2) of a sketch from ``start``: equally spaced on a line, unequally spaced on a
    line (spacings uniform in [0.5, 1.5] x the mean), or on a circular arc (a constant turn per waypoint)."""
    k, step = config.waypoints, config.waypoint_spacing
    steps = step * rng.uniform(0.5, 1.5, size=k) if kind == "unequal" else np.full(k, step)
    turn = rng.choice([-1.0, 1.0]) * rng.uniform(0.15, 0.35) if kind == "curve" else 0.0
    angles = direction + turn * np.arange(1, k + 1)  # (K,) heading of each segment of the sketch
    moves = steps[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=-1)  # (K, 2)
    return start + np.cumsum(moves, axis=0)


def sketch_route(
    config: NavConfig, segments: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, float, str]:
    """Start (2,), waypoints (K, 2) in free space, the robot's heading and the sketch's kind."""
    if config.sketch == "file":
        points = np.array(config.fixed_waypoints, dtype=np.float64)
        first = points[1] - points[0]
        return points[0], points[1:], float(np.arctan2(first[1], first[0])), "file"
    clearance = 1.5 * config.radius
    for _ in range(1_000):
        kind = config.sketch
        if kind == "mixed":
            kind = str(rng.choice(["equal", "unequal", "curve"], p=[0.4, 0.2, 0.4]))
        start = free_point(config, segments, rng)
        direction = rng.uniform(-math.pi, math.pi)
        points = sketch_points(kind, start, direction, config, rng)
        inside = ((points > clearance) & (points < config.map_size - clearance)).all()
        if (
            inside
            and segment_distance(points, np.broadcast_to(segments, (len(points), *segments.shape))).min()
            >= clearance
        ):
            return start, points, direction, kind
    raise ConfigError(f"no sketch of {config.waypoints} waypoints fits the free space of {config}")


def load_waypoints(path: str | Path, map_size: float) -> tuple[tuple[float, float], ...]:
    """A sketch from a text file: one ``x, y`` (metres) per line, the start first; ``#`` comments.

    An empty file, a line that is not two numbers, or a point off the ``map_size`` square: one line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"waypoints file not found: {path}")
    points: list[tuple[float, float]] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = [f for f in text.replace(",", " ").split() if f]
        try:
            x, y = (float(f) for f in fields)
        except ValueError:
            raise InputError(f"{path}:{number}: expected two numbers 'x, y', got {text!r}") from None
        if not (0.0 <= x <= map_size and 0.0 <= y <= map_size) or not math.isfinite(x + y):
            raise InputError(f"{path}:{number}: waypoint ({x}, {y}) is off the {map_size} m map")
        points.append((x, y))
    if len(points) < 2:
        raise InputError(
            f"{path} holds {len(points)} waypoints; a sketch needs a start and at least one more"
        )
    return tuple(points)


def displacement_errors(trajectory: np.ndarray, waypoints: np.ndarray) -> tuple[float, float]:
    """ADE: the mean over waypoints of the distance from each waypoint to the nearest trajectory
    point; FDE: the distance from the trajectory's end to the last waypoint. (T, 2), (K, 2) metres."""
    dist = np.linalg.norm(waypoints[:, None, :] - trajectory[None, :, :], axis=-1)  # (K, T)
    return float(dist.min(axis=1).mean()), float(np.linalg.norm(trajectory[-1] - waypoints[-1]))


def observation_bounds(config: NavConfig) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest value (obs_dim,) of every observation entry."""
    pixels, k = config.size**2, config.num_goals
    high = np.full(config.obs_dim, np.float32(len(CLASS_NAMES) - 1))
    low = np.zeros_like(high)
    if config.sketch != "none":  # pose (x, y in [0, 1], sin, cos), waypoints in [0, 1], index
        low[pixels : pixels + POSE_FEATURES] = (0.0, 0.0, -1.0, -1.0)
        high[pixels : pixels + POSE_FEATURES + 2 * k] = 1.0
        high[pixels + POSE_FEATURES + 2 * k] = k - 1
    high[-GOAL_FEATURES:] = np.float32(math.sqrt(2.0))
    low[-2:] = -1.0
    return low, high


class NavigationEnv(gym.Env[np.ndarray, np.int64]):
    """One navigation environment (gymnasium API) on a batch of one.

    ``info`` carries ``success``, ``collisions`` and, from :meth:`views`, the semantic and depth
    images; ``render()`` gives the coloured semantic view (``render_mode="rgb_array"``).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"]}

    def __init__(self, config: NavConfig | None = None, render_mode: str | None = None) -> None:
        self.config = config or NavConfig()
        self.render_mode = render_mode
        self.batch = NavigationBatch(self.config, 1)
        self.observation_space = gym.spaces.Box(*observation_bounds(self.config), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(NUM_ACTIONS)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.batch.reset_one(0, self.np_random)
        return self.batch.observe()[0], {"success": False, "collisions": 0}

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        r = self.batch.step(np.array([int(action)]))
        info = {"success": bool(r.success[0]), "collisions": int(r.collisions[0])}
        return r.obs[0], float(r.rewards[0]), bool(r.terminated[0]), bool(r.truncated[0]), info

    def views(self) -> tuple[np.ndarray, np.ndarray]:
        """The current semantic (H, W) class ids and depth (H, W) metres."""
        return self.batch.semantic[0], self.batch.depth[0]

    def render(self) -> np.ndarray:  # type: ignore[override]
        return self.batch.rgb()[0]

    def depth_points(self) -> tuple[np.ndarray, np.ndarray]:
        """The current view as a point cloud: (H, W, 3) world points (x, y, height) of its pixels
        and their (H, W) class ids (the ceiling's points lie on the ceiling plane)."""
        semantic, depth = self.views()
        b = self.batch
        return b.camera.back_project(depth, b.pos[0], float(b.heading[0])), semantic


NAMESPACE = "attnlab/"  # gymnasium namespace of the navigation ids
ENV_CONFIGS: dict[str, NavConfig] = {
    "attnlab/Nav-v0": NavConfig(),
    "attnlab/NavOneRoom-v0": NavConfig(rooms=1),
    "attnlab/NavSubgoals-v0": NavConfig(subgoals=2),
    "attnlab/NavEmpty-v0": NavConfig(rooms=1, furniture=0, people=0),
    "attnlab/NavSketch-v0": NavConfig(rooms=1, furniture=2, people=1, sketch="mixed"),
    # the sketch thesis's 128x128 view, for longer runs than a CPU's (the sketch networks' image_size 128)
    "attnlab/NavSketch128-v0": NavConfig(size=128, rooms=1, furniture=2, people=1, sketch="mixed"),
}


def make_navigation(env_id: str, **overrides: Any) -> NavigationEnv:
    """One registered navigation environment; an unknown id lists the known ones."""
    if env_id not in ENV_CONFIGS:
        raise unknown("navigation environment", env_id, ENV_CONFIGS)
    return NavigationEnv(replace(ENV_CONFIGS[env_id], **overrides))


def make_navigation_batch(env_id: str, num_envs: int, seed: int) -> NavigationBatch:
    """``num_envs`` environments of ``env_id``, environment i seeded with ``seed + i``."""
    if env_id not in ENV_CONFIGS:
        raise unknown("navigation environment", env_id, ENV_CONFIGS)
    batch = NavigationBatch(ENV_CONFIGS[env_id], num_envs)
    batch.seed([seed + i for i in range(num_envs)])
    return batch


for _env_id, _config in ENV_CONFIGS.items():
    if _env_id not in gym.registry:
        gym.register(_env_id, entry_point=NavigationEnv, kwargs={"config": _config})


@dataclass
class EpisodeStats:
    episode_return: float
    success: bool
    collisions: int
    length: int


def navigation_episodes(
    env: gym.Env[Any, Any], policy: Callable[[np.ndarray], int], seeds: Sequence[int]
) -> list[EpisodeStats]:
    """One episode per seed (``reset(seed=...)``) with ``policy`` acting: return, success, collisions."""
    stats = []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        total, length, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy(obs))
            total, length, done = total + float(reward), length + 1, terminated or truncated
        stats.append(EpisodeStats(total, bool(info["success"]), int(info["collisions"]), length))
    return stats


def summarise(stats: Sequence[EpisodeStats], prefix: str) -> dict[str, float]:
    """Success rate, mean collisions and mean return of ``stats`` under ``prefix``."""
    n = max(1, len(stats))
    return {
        f"{prefix}success_rate": sum(s.success for s in stats) / n,
        f"{prefix}collisions": sum(s.collisions for s in stats) / n,
        f"{prefix}return": sum(s.episode_return for s in stats) / n,
        f"{prefix}length": sum(s.length for s in stats) / n,
    }
