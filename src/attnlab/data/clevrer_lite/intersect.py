"""Ray intersections with the three CLEVR solids standing on the ground, and their normals.

Every function takes a bundle of rays, ``origins`` (N, 3) or one origin (3,) and
``dirs`` (N, 3) or one direction (3,), unit length, and returns the distance to the
first hit along each ray (N,), ``inf`` where it misses. Camera rays share their
origin, shadow rays their direction; broadcasting serves both.

Solids, for an object of radius R standing at (x, y):
* sphere: radius R, centre (x, y, R);
* cylinder: upright, radius R, height 2R;
* cube: half-side ``CUBE_HALF * R``, turned by ``angle`` about z; 0.75 R keeps its
  look close to CLEVR's (a cube a little smaller than the sphere) while its corners
  reach only 1.06 R, so it barely pokes out of its collision disc.
"""

from __future__ import annotations

import numpy as np

CUBE_HALF = 0.75
SHAPE_CODES = {"sphere": 0, "cube": 1, "cylinder": 2}


def centre_height(shape: str, radius: float) -> float:
    """Height of an object's centre above the ground (the z of its location)."""
    return CUBE_HALF * radius if shape == "cube" else radius


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=-1)


def hit_sphere(origins: np.ndarray, dirs: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    oc = origins - centre
    b = _dot(dirs, oc)  # with |dir| = 1 the quadratic is t^2 + 2bt + c = 0
    c = _dot(oc, oc) - radius * radius
    disc = b * b - c
    with np.errstate(invalid="ignore"):
        t = -b - np.sqrt(disc)
    return np.where((disc > 0) & (t > 0), t, np.inf)


def hit_cylinder(origins: np.ndarray, dirs: np.ndarray, base: np.ndarray, radius: float) -> np.ndarray:
    """Upright cylinder of height 2 * radius on the ground at ``base`` (x, y, 0)."""
    height = 2 * radius
    o = origins - base
    ox, oy, oz = o[..., 0], o[..., 1], o[..., 2]
    dx, dy, dz = dirs[..., 0], dirs[..., 1], dirs[..., 2]
    a = np.maximum(dx * dx + dy * dy, 1e-12)
    b = ox * dx + oy * dy
    c = ox * ox + oy * oy - radius * radius
    disc = b * b - a * c
    with np.errstate(invalid="ignore"):
        t_side = (-b - np.sqrt(disc)) / a
    z = oz + t_side * dz
    side = (disc > 0) & (t_side > 0) & (z >= 0) & (z <= height)
    safe_dz = np.where(np.abs(dz) < 1e-12, 1e-12, dz)
    t_top = (height - oz) / safe_dz
    tx, ty = ox + t_top * dx, oy + t_top * dy
    top = (t_top > 0) & (tx * tx + ty * ty <= radius * radius)
    return np.minimum(np.where(side, t_side, np.inf), np.where(top, t_top, np.inf))


def _to_local(v: np.ndarray, angle: float) -> np.ndarray:
    """Rotate vectors (..., 3) by -angle about z: into the cube's own frame."""
    c, s = np.cos(angle), np.sin(angle)
    x, y = v[..., 0], v[..., 1]
    return np.stack([c * x + s * y, c * y - s * x, v[..., 2]], axis=-1)


def hit_cube(
    origins: np.ndarray, dirs: np.ndarray, base: np.ndarray, radius: float, angle: float
) -> np.ndarray:
    """Cube standing on the ground at ``base`` (x, y, 0), turned by ``angle`` (slab method)."""
    half = CUBE_HALF * radius
    o = _to_local(origins - base - np.array([0.0, 0.0, half]), angle)
    d = _to_local(dirs, angle)
    d = np.where(np.abs(d) < 1e-12, 1e-12, d)
    t1, t2 = (-half - o) / d, (half - o) / d
    near = np.minimum(t1, t2).max(axis=-1)
    far = np.maximum(t1, t2).min(axis=-1)
    return np.where((near <= far) & (near > 0), near, np.inf)


def hit(
    shape: int, origins: np.ndarray, dirs: np.ndarray, xy: np.ndarray, radius: float, angle: float
) -> np.ndarray:
    """Distances to the object of shape code ``shape`` standing at ``xy`` (2,)."""
    if shape == SHAPE_CODES["sphere"]:
        return hit_sphere(origins, dirs, np.array([xy[0], xy[1], radius]), radius)
    base = np.array([xy[0], xy[1], 0.0])
    if shape == SHAPE_CODES["cylinder"]:
        return hit_cylinder(origins, dirs, base, radius)
    return hit_cube(origins, dirs, base, radius, angle)


def normals(shape: int, points: np.ndarray, xy: np.ndarray, radius: float, angle: float) -> np.ndarray:
    """Outward unit normals (N, 3) at surface ``points`` (N, 3) of the object."""
    if shape == SHAPE_CODES["sphere"]:
        return (points - np.array([xy[0], xy[1], radius])) / radius
    rel = points - np.array([xy[0], xy[1], 0.0])
    if shape == SHAPE_CODES["cylinder"]:
        radial = np.sqrt(rel[:, 0] ** 2 + rel[:, 1] ** 2)
        on_top = np.abs(rel[:, 2] - 2 * radius) < np.abs(radial - radius)
        side = rel / np.maximum(radial, 1e-12)[:, None]
        side[:, 2] = 0
        return np.where(on_top[:, None], np.array([0.0, 0.0, 1.0]), side)
    half = CUBE_HALF * radius
    local = _to_local(rel - np.array([0.0, 0.0, half]), angle)
    axis = np.abs(local).argmax(axis=1)  # the face the point lies on
    n_local = np.zeros_like(local)
    rows = np.arange(len(local))
    n_local[rows, axis] = np.sign(local[rows, axis])
    return _to_local(n_local, -angle)
