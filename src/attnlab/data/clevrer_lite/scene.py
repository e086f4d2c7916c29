"""Sample a scene (objects, initial state) and simulate it, re-sampling until it is usable.

Scene ``index`` of a dataset is a pure function of ``(config, seed, index)``.

Objects get distinct (colour, material, shape) triples, as in CLEVRER. Objects
present from the start stand inside the view, at least 2.6 radii apart; some slide
off at a random speed, most of them towards another object (so that things happen).
Others enter later (in the first three quarters of the video): each is placed just
outside the left, right or far edge of the view and launched, most of them towards
an object standing still, fast enough to get there despite friction.

A sample is kept when (1) every object is seen at some frame of the video, (2) every
collision, in the video or in the held-back frames, happens with both objects in
view (questions are about what can be seen), (3) the video has at least
``min_collisions`` collisions and (4) for a fraction ``future_prob`` of the scenes
(drawn first), a collision happens in the held-back frames: left alone, only about
a quarter of the scenes have one, too few for predictive questions with correct
answers. After ``MAX_ATTEMPTS`` rejected samples the last one is kept, so that
generation always ends.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from attnlab.data.clevrer_lite.camera import Camera, CameraConfig, in_view, object_corners
from attnlab.data.clevrer_lite.physics import InitialState, Trajectory, simulate

if TYPE_CHECKING:
    from attnlab.data.clevrer_lite.config import ClevrerLiteConfig

MAX_ATTEMPTS = 200
MIN_GAP = 2.6  # initial distance between objects, in radii


@dataclass(frozen=True)
class SceneObject:
    object_id: int
    color: str
    material: str
    shape: str
    angle: float  # yaw in radians (cubes show it)


@dataclass(frozen=True)
class Scene:
    index: int
    objects: tuple[SceneObject, ...]
    initial: InitialState
    trajectory: Trajectory  # num_frames + predict_frames frames
    in_view: np.ndarray  # (F_total, K) bool
    num_frames: int  # the frames shown in the video; the rest are held back

    @property
    def num_objects(self) -> int:
        return len(self.objects)


@functools.lru_cache(maxsize=8)
def camera_for(config: CameraConfig, height: int, width: int) -> Camera:
    return Camera(config, height, width)


def scene_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed % 2**63, index])


def _inside(camera: Camera, xy: np.ndarray, radius: float, margin: int) -> np.ndarray:
    """(N,) whether objects at ``xy`` (N, 2) are entirely in the image, ``margin`` pixels in."""
    screen, depth = camera.project(object_corners(xy, radius, 2 * radius))  # (N, 8, 2), (N, 8)
    lo, hi = screen.min(axis=1), screen.max(axis=1)
    size = np.array([camera.width, camera.height])
    return (depth > 0).all(axis=1) & (lo >= margin).all(axis=1) & (hi <= size - margin).all(axis=1)


def _place(c: ClevrerLiteConfig, camera: Camera, rng: np.random.Generator, k: int) -> np.ndarray:
    """Positions (k, 2) inside the view, ``MIN_GAP`` radii apart (best effort: after
    many tries the last trial point is taken)."""
    lo, hi = camera.ground_bounds
    r, margin = c.physics.radius, max(1, camera.height // 32)
    placed = np.zeros((0, 2))
    for _ in range(k):
        for _ in range(8):
            trials = rng.uniform(lo, hi, (64, 2))
            ok = _inside(camera, trials, r, margin)
            if len(placed):
                gaps = np.linalg.norm(trials[:, None] - placed[None], axis=-1)  # (64, n)
                ok &= (gaps >= MIN_GAP * r).all(axis=1)
            if ok.any():
                break
        pick = trials[np.argmax(ok)] if ok.any() else trials[-1]
        placed = np.concatenate([placed, pick[None]])
    return placed


def _launch(c: ClevrerLiteConfig, rng: np.random.Generator, xy: np.ndarray) -> np.ndarray:
    """Initial velocities (K, 2) of objects present from the start."""
    k = len(xy)
    v = np.zeros((k, 2))
    moving = rng.random(k) < c.moving_prob
    if not moving.any():
        moving[rng.integers(k)] = True
    for i in np.nonzero(moving)[0]:
        others = [j for j in range(k) if j != i]
        if others and rng.random() < c.aim_prob:
            goal = xy[others[rng.integers(len(others))]]
            heading = math.atan2(*(goal - xy[i])[::-1]) + rng.normal(0, 0.12)
        else:
            heading = rng.uniform(-math.pi, math.pi)
        speed = rng.uniform(c.min_speed, c.max_speed)
        v[i] = speed * math.cos(heading), speed * math.sin(heading)
    return v


def _entry(
    c: ClevrerLiteConfig, camera: Camera, rng: np.random.Generator, goal: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Start (2,) just outside the view and velocity (2,) of an object that slides to ``goal``."""
    forward = np.array(
        [math.sin(math.radians(camera.config.azimuth)), math.cos(math.radians(camera.config.azimuth))]
    )
    right = np.array([forward[1], -forward[0]])
    side = rng.integers(3)  # from the left, the right or the far edge
    inward = (right, -right, -forward)[side]
    angle = rng.normal(0, 0.3)
    direction = np.array(
        [
            inward[0] * math.cos(angle) - inward[1] * math.sin(angle),
            inward[0] * math.sin(angle) + inward[1] * math.cos(angle),
        ]
    )
    r = c.physics.radius
    # back off from the goal until no pixel of the object can be seen, then one radius more
    starts = goal - (0.25 * r * np.arange(1, 201))[:, None] * direction  # (200, 2)
    boxes = camera.screen_boxes(object_corners(starts, r, 2 * r))  # (200, 4)
    hidden = (boxes[:, 1] == boxes[:, 0]) | (boxes[:, 3] == boxes[:, 2])
    start = starts[np.argmax(hidden)] - r * direction
    distance = float(np.hypot(*(goal - start)))
    arrive = rng.uniform(c.min_speed, c.max_speed) * 0.6
    speed = math.sqrt(arrive**2 + 2 * c.physics.friction * distance)
    return start, speed * direction


def _properties(c: ClevrerLiteConfig, rng: np.random.Generator, k: int) -> list[tuple[str, str, str]]:
    combos = [(col, mat, sh) for col in c.colors for mat in c.materials for sh in c.shapes]
    picked = rng.choice(len(combos), size=k, replace=False)
    return [combos[i] for i in picked]


def sample_initial(
    c: ClevrerLiteConfig, camera: Camera, rng: np.random.Generator
) -> tuple[list[tuple[str, str, str]], np.ndarray, InitialState]:
    """Object properties, yaw angles (K,) and the initial state of one scene sample."""
    k = int(rng.integers(c.min_objects, c.max_objects + 1))
    props = _properties(c, rng, k)
    angles = rng.uniform(0, math.pi / 2, k)
    entering = rng.random(k) < c.enter_prob
    entering[0] = False  # someone is there from the start
    present = np.nonzero(~entering)[0]
    xy = np.zeros((k, 2))
    v = np.zeros((k, 2))
    xy[present] = _place(c, camera, rng, len(present))
    v[present] = _launch(c, rng, xy[present])
    enter_steps = np.zeros(k, dtype=np.int64)
    resting = [j for j in present if not v[j].any()]
    for i in np.nonzero(entering)[0]:
        # most entering objects head for one that stands still, to hit it when they come
        aim = resting and rng.random() < c.aim_prob
        goal = xy[resting[rng.integers(len(resting))]] if aim else _place(c, camera, rng, 1)[0]
        xy[i], v[i] = _entry(c, camera, rng, goal)
        enter_steps[i] = rng.integers(1, max(2, c.num_frames * 3 // 4)) * c.physics.substeps
    return props, angles, InitialState(xy, v, enter_steps, np.ones(k))


def _acceptable(c: ClevrerLiteConfig, trajectory: Trajectory, seen: np.ndarray, future: bool) -> bool:
    shown = seen[: c.num_frames]
    if not shown.any(axis=0).all():
        return False
    if any(not (seen[e.frame, e.i] and seen[e.frame, e.j]) for e in trajectory.contacts):
        return False
    if future and not any(e.frame >= c.num_frames for e in trajectory.contacts):
        return False
    return sum(e.frame < c.num_frames for e in trajectory.contacts) >= c.min_collisions


def make_scene(config: ClevrerLiteConfig, seed: int, index: int) -> Scene:
    """Scene ``index`` of the dataset with ``seed``."""
    if index < 0:
        raise IndexError(index)
    c = config
    camera = camera_for(c.camera, c.height, c.width)
    rng = scene_rng(seed, index)
    total = c.num_frames + c.predict_frames
    future = c.predict_frames > 0 and rng.random() < c.future_prob
    for _ in range(MAX_ATTEMPTS):
        props, angles, initial = sample_initial(c, camera, rng)
        trajectory = simulate(initial, total, c.fps, c.physics)
        seen = in_view(camera, trajectory.positions, trajectory.active, c.physics.radius)
        if _acceptable(c, trajectory, seen, future):
            break
    objects = tuple(SceneObject(i, *p, float(a)) for i, (p, a) in enumerate(zip(props, angles, strict=True)))
    return Scene(index, objects, initial, trajectory, seen, c.num_frames)
