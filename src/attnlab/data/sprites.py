"""Video Multi-dSprites (VMDS) and Sprites-MOT (SpMOT) style clips, generated.

Weis et al. 2020 ("Unmasking the Inductive Biases of Unsupervised Object
Representations for Video Sequences", arXiv:2006.07034) benchmark ViMON and others
on VMDS (10 frames of 64x64, 1-4 sprites, non-linear motion, occlusion) and SpMOT
(0-3 sprites, linear motion, from He et al. 2018, arXiv:1809.03137). This module
draws clips of that kind from a seed, so recipes run with no download:

* flat-coloured sprites (square, disc, ellipse, heart, diamond, triangle) on black,
  each inside the frame at all times (it bounces off the borders);
* motion on curved paths with changing speed (``motion="curved"``) or straight
  lines at constant speed (``"linear"``);
* occlusion by a fixed depth order per clip: a sprite painted later covers the
  ones behind it, and the ground truth holds only the *visible* pixels;
* the VMDS challenge variants as presets (occlusion-heavy, same colour, small,
  large) and the out-of-distribution ones (rotation, size change, colour change).

Clip ``i`` of a dataset is a pure function of ``(config, seed, i)``. Finite splits
can be cached on disk and are validated on load: the uint8 id maps and the sprite
parameters as ``.npy`` files, memory-mapped, with checksums; frames are repainted
from the id maps and colours (41 KB per 64x64x10 clip instead of 164 KB).

Deviation from the original generators: positions and shapes are sampled at pixel
centres without anti-aliasing, so every pixel belongs to exactly one object or the
background and has exactly that object's colour.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from rich.progress import track
from torch.utils.data import Dataset

from attnlab.data._registry import register_datamodule
from attnlab.data.datamodule import DataModule, Split
from attnlab.data.uploads import clip_frames
from attnlab.errors import ConfigError, InputError, unknown
from attnlab.status import say

SHAPES = ("square", "disc", "ellipse", "heart", "diamond", "triangle")
CACHE_VERSION = 1


@dataclass(frozen=True)
class SpriteConfig:
    """What a clip looks like. Radii are circumradii and speeds are per frame, both
    as fractions of ``image_size``."""

    image_size: int = 64
    num_frames: int = 10
    min_objects: int = 1
    max_objects: int = 4
    shapes: tuple[str, ...] = ("square", "ellipse", "heart", "diamond", "triangle")
    min_radius: float = 0.1
    max_radius: float = 0.2
    min_speed: float = 0.015
    max_speed: float = 0.05
    motion: Literal["curved", "linear"] = "curved"
    occlusion: bool = False  # all paths pass through one point at one frame
    same_colour: bool = False
    rotation: bool = False
    size_change: bool = False
    colour_change: bool = False

    def __post_init__(self) -> None:
        _check_config(self)


def _check_config(c: SpriteConfig) -> None:
    if c.image_size < 8 or c.num_frames < 1:
        raise ConfigError(
            f"sprites need image_size >= 8 and num_frames >= 1, got {c.image_size}, {c.num_frames}"
        )
    if not 0 <= c.min_objects <= c.max_objects <= 255:
        raise ConfigError(
            f"sprites need 0 <= min_objects <= max_objects <= 255, got {c.min_objects}, {c.max_objects}"
        )
    bad = [s for s in c.shapes if s not in SHAPES]
    if not c.shapes or bad:
        raise ConfigError(f"sprite shapes must be a non-empty subset of {SHAPES}, got {c.shapes}")
    if not 0 < c.min_radius <= c.max_radius <= 0.45:
        raise ConfigError(
            f"sprites need 0 < min_radius <= max_radius <= 0.45, got {c.min_radius}, {c.max_radius}"
        )
    if not 0 <= c.min_speed <= c.max_speed <= 0.25:
        raise ConfigError(
            f"sprites need 0 <= min_speed <= max_speed <= 0.25, got {c.min_speed}, {c.max_speed}"
        )
    if c.motion not in ("curved", "linear"):
        raise ConfigError(f"sprite motion must be 'curved' or 'linear', got '{c.motion}'")


_VMDS = SpriteConfig()
SPRITE_PRESETS: dict[str, SpriteConfig] = {
    "vmds": _VMDS,
    "vmds-occlusion": dataclasses.replace(_VMDS, min_objects=2, occlusion=True),
    "vmds-same-colour": dataclasses.replace(_VMDS, min_objects=2, same_colour=True),
    "vmds-small": dataclasses.replace(_VMDS, min_radius=0.05, max_radius=0.09),
    "vmds-large": dataclasses.replace(_VMDS, min_radius=0.22, max_radius=0.32),
    "vmds-rotation": dataclasses.replace(_VMDS, rotation=True),
    "vmds-size-change": dataclasses.replace(_VMDS, size_change=True),
    "vmds-colour-change": dataclasses.replace(_VMDS, colour_change=True),
    "spmot": SpriteConfig(
        min_objects=0,
        max_objects=3,
        shapes=("square", "disc", "diamond", "triangle"),
        min_radius=0.1,
        max_radius=0.16,
        motion="linear",
    ),
}


def sprite_preset(name: str) -> SpriteConfig:
    if name not in SPRITE_PRESETS:
        raise unknown("sprite preset", name, SPRITE_PRESETS)
    return SPRITE_PRESETS[name]


# ---------------------------------------------------------------- sampling


@dataclass(frozen=True)
class SpriteTracks:
    """The parameters of the K sprites of one clip (T frames)."""

    shapes: np.ndarray  # (K,) int8, index into SHAPES
    aspect: np.ndarray  # (K,) float32, minor/major axis of ellipses (1 otherwise)
    depth: np.ndarray  # (K,) int8, paint order: 0 is at the back
    centers: np.ndarray  # (T, K, 2) float32, (x, y) in pixels
    radii: np.ndarray  # (T, K) float32, circumradius in pixels
    angles: np.ndarray  # (T, K) float32, radians
    colours: np.ndarray  # (T, K, 3) uint8

    @property
    def num_objects(self) -> int:
        return int(self.shapes.shape[0])


def fold(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Reflect an unbounded path into ``[lo, hi]``: what bouncing off both walls does."""
    period = 2.0 * (hi - lo)
    y = np.mod(x - lo, period)
    return lo + period / 2 - np.abs(y - period / 2)


def _radii(c: SpriteConfig, rng: np.random.Generator, k: int) -> np.ndarray:
    start = rng.uniform(c.min_radius, c.max_radius, k) * c.image_size
    if not c.size_change:
        return np.broadcast_to(start, (c.num_frames, k))
    # grow or shrink by 1.5-2x over the clip; capped so the sprite still fits
    factor = rng.uniform(1.5, 2.0, k) ** rng.choice([-1.0, 1.0], k)
    end = np.minimum(start * factor, 0.45 * c.image_size)
    ramp = np.linspace(0.0, 1.0, c.num_frames)[:, None]
    return start + (end - start) * ramp  # (T, K)


def _velocities(c: SpriteConfig, rng: np.random.Generator, k: int) -> np.ndarray:
    t = np.arange(c.num_frames)[:, None]  # (T, 1)
    heading = rng.uniform(0, 2 * np.pi, k)
    speed0 = rng.uniform(c.min_speed, c.max_speed, k) * c.image_size
    if c.motion == "linear":
        speed, turn = np.broadcast_to(speed0, (c.num_frames, k)), np.broadcast_to(heading, (c.num_frames, k))
    else:
        # curving at 0.1-0.35 rad per frame while speeding up or slowing down
        rate = rng.uniform(0.1, 0.35, k) * rng.choice([-1.0, 1.0], k)
        speed1 = rng.uniform(c.min_speed, c.max_speed, k) * c.image_size
        speed = speed0 + (speed1 - speed0) * t / max(c.num_frames - 1, 1)
        turn = heading + rate * t
    return np.stack([speed * np.cos(turn), speed * np.sin(turn)], axis=-1)  # (T, K, 2)


def _centers(c: SpriteConfig, rng: np.random.Generator, reach: np.ndarray) -> np.ndarray:
    k = reach.shape[0]
    lo, hi = reach, c.image_size - reach  # (K,)
    start = rng.uniform(lo[:, None], hi[:, None], (k, 2))  # (K, 2)
    steps = _velocities(c, rng, k)
    # unfolded path: position at frame t is the start plus the steps before t
    path = start + np.concatenate([np.zeros((1, k, 2)), np.cumsum(steps[:-1], axis=0)])  # (T, K, 2)
    if c.occlusion:
        # shift each unfolded path so all sprites are at one central point at frame
        # `meet`; folding leaves a point inside [lo, hi] where it is
        meet = rng.integers(c.num_frames // 3, c.num_frames - c.num_frames // 3)
        target = c.image_size / 2 + rng.uniform(-0.03, 0.03, (k, 2)) * c.image_size
        path = path + (target - path[meet])
    return fold(path, lo[None, :, None], hi[None, :, None])


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    k = np.mod(np.array([5.0, 3.0, 1.0]) + h[..., None] * 6.0, 6.0)
    return v[..., None] - v[..., None] * s[..., None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _colours(c: SpriteConfig, rng: np.random.Generator, k: int) -> np.ndarray:
    n = 1 if c.same_colour else k
    hue, sat, val = rng.uniform(0, 1, n), rng.uniform(0.6, 1.0, n), rng.uniform(0.6, 1.0, n)
    shift = rng.uniform(0.2, 0.5, n) * rng.choice([-1.0, 1.0], n) if c.colour_change else np.zeros(n)
    hues = hue + shift * np.linspace(0.0, 1.0, c.num_frames)[:, None]  # (T, n)
    rgb = _hsv_to_rgb(hues, np.broadcast_to(sat, hues.shape), np.broadcast_to(val, hues.shape))
    rgb = np.round(rgb * 255).astype(np.uint8)  # (T, n, 3); integers so a uint8 cache is exact
    return np.broadcast_to(rgb, (c.num_frames, k, 3)).copy()


def sample_tracks(c: SpriteConfig, rng: np.random.Generator) -> SpriteTracks:
    k = int(rng.integers(c.min_objects, c.max_objects + 1))
    shapes = rng.choice([SHAPES.index(s) for s in c.shapes], k).astype(np.int8)
    aspect = np.where(shapes == SHAPES.index("ellipse"), rng.uniform(0.5, 0.8, k), 1.0)
    radii = _radii(c, rng, k)
    angles0 = rng.uniform(0, 2 * np.pi, k) if c.rotation else np.zeros(k)
    spin = rng.uniform(0.15, 0.4, k) * rng.choice([-1.0, 1.0], k) if c.rotation else np.zeros(k)
    angles = angles0 + spin * np.arange(c.num_frames)[:, None]  # (T, K)
    return SpriteTracks(
        shapes=shapes,
        aspect=aspect.astype(np.float32),
        depth=rng.permutation(k).astype(np.int8),
        centers=_centers(c, rng, radii.max(axis=0)).astype(np.float32),
        radii=np.ascontiguousarray(radii, dtype=np.float32),
        angles=angles.astype(np.float32),
        colours=_colours(c, rng, k),
    )


# ---------------------------------------------------------------- drawing


def _inside(shape: str, u: np.ndarray, v: np.ndarray, aspect: float) -> np.ndarray:
    """Is the point (u, v) (unit circumradius, v pointing down) inside the shape."""
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.7071
    if shape in ("disc", "ellipse"):
        return u * u + (v / aspect) ** 2 <= 1.0
    if shape == "diamond":
        return np.abs(u) / 0.7 + np.abs(v) <= 1.0
    if shape == "triangle":  # circumradius 1, apex up
        return (v <= 0.5) & (1.7320508 * np.abs(u) <= v + 1.0)
    # heart curve (x^2+y^2-1)^3 <= x^2 y^3 (y up); its circumcircle is centred at
    # y=0.25 with radius 1.25, so this maps it into the unit circle
    x, y = 1.26 * u, 0.25 - 1.26 * v
    r = x * x + y * y - 1.0
    return r * r * r <= x * x * y * y * y


def amodal_masks(tracks: SpriteTracks, image_size: int) -> np.ndarray:
    """Each sprite's full silhouette, ignoring the others: (T, K, H, W) bool."""
    grid = np.arange(image_size, dtype=np.float32) + 0.5  # pixel centres
    t = tracks.centers.shape[0]
    out = np.zeros((t, tracks.num_objects, image_size, image_size), dtype=bool)
    for k in range(tracks.num_objects):
        dx = grid[None, None, :] - tracks.centers[:, k, 0, None, None]  # (T, 1, W)
        dy = grid[None, :, None] - tracks.centers[:, k, 1, None, None]  # (T, H, 1)
        cos = (np.cos(tracks.angles[:, k]) / tracks.radii[:, k])[:, None, None]
        sin = (np.sin(tracks.angles[:, k]) / tracks.radii[:, k])[:, None, None]
        u, v = dx * cos + dy * sin, dy * cos - dx * sin  # (T, H, W), rotated into the sprite's frame
        out[:, k] = _inside(SHAPES[tracks.shapes[k]], u, v, float(tracks.aspect[k]))
    return out


def render(tracks: SpriteTracks, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, H, W, 3) uint8 and the visible-instance id map (T, H, W) uint8:
    0 is background, k + 1 is sprite k."""
    silhouettes = amodal_masks(tracks, image_size)
    ids = np.zeros((tracks.centers.shape[0], image_size, image_size), np.uint8)
    for k in np.argsort(tracks.depth):  # back to front: nearer sprites overwrite
        ids[silhouettes[:, k]] = k + 1
    return paint(ids, tracks.colours), ids


def paint(ids: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 from an id map (T, H, W) and colours (T, K, 3) uint8,
    on black: sprites are flat-coloured, so the id map and colours determine the frames."""
    t = ids.shape[0]
    palette = np.concatenate([np.zeros((t, 1, 3), np.uint8), colours], axis=1)  # (T, K+1, 3)
    return palette[np.arange(t)[:, None, None], ids]


@dataclass(frozen=True)
class Clip:
    frames: np.ndarray  # (T, H, W, 3) uint8
    segmentation: np.ndarray  # (T, H, W) uint8, 0 background, k + 1 sprite k
    tracks: SpriteTracks


def generate_clip(config: SpriteConfig, seed: int, index: int) -> Clip:
    if index < 0:
        raise IndexError(index)
    rng = np.random.default_rng([seed % 2**63, index])
    tracks = sample_tracks(config, rng)
    frames, ids = render(tracks, config.image_size)
    return Clip(frames, ids, tracks)


# ---------------------------------------------------------------- samples

_TRACK_FIELDS = ("shapes", "aspect", "depth", "centers", "radii", "angles", "colours")


def _pad_tracks(tracks: SpriteTracks, k_max: int) -> dict[str, np.ndarray]:
    """Tracks padded along the object axis to ``k_max`` (shapes and depth with -1)."""
    out = {}
    for name in _TRACK_FIELDS:
        value = getattr(tracks, name)
        axis = 0 if value.ndim == 1 else 1
        width = [(0, 0)] * value.ndim
        width[axis] = (0, k_max - value.shape[axis])
        fill = -1 if name in ("shapes", "depth") else 0
        out[name] = np.pad(value, width, constant_values=fill)
    return out


def _unpad_tracks(padded: dict[str, np.ndarray], k: int) -> SpriteTracks:
    cut = {n: (a[:k] if n in ("shapes", "aspect", "depth") else a[:, :k]) for n, a in padded.items()}
    return SpriteTracks(**{n: np.asarray(cut[n]) for n in _TRACK_FIELDS})


def clip_to_sample(clip: Clip, k_max: int) -> dict[str, torch.Tensor]:
    """The tensors of one sample (see :class:`VideoSprites` for the keys)."""
    # numpy, not torch: torch's intra-op threads make these small ops ~10x slower
    # on a busy machine, and this runs in data-loader workers
    k = clip.tracks.num_objects
    padded = _pad_tracks(clip.tracks, k_max)
    video = clip.frames.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)  # (T, 3, H, W)
    channels = np.arange(k_max + 1, dtype=np.uint8)[None, :, None, None]
    present = np.arange(1, k_max + 1) <= k
    arrays = {
        "video": video,
        "segmentation": clip.segmentation.astype(np.int64),  # (T, H, W)
        "masks": clip.segmentation[:, None] == channels,  # (T, K_max+1, H, W)
        "ids": np.where(present, np.arange(1, k_max + 1), 0),
        "num_objects": np.array(k, dtype=np.int64),
        "shapes": padded["shapes"].astype(np.int64),
        "depth": padded["depth"].astype(np.int64),
        "centers": padded["centers"].astype(np.float32),
        "colours": padded["colours"].astype(np.float32) / np.float32(255),
    }
    # asarray(order="C"), not ascontiguousarray: that one turns the 0-d num_objects into (1,)
    return {name: torch.from_numpy(np.asarray(a, order="C")) for name, a in arrays.items()}


# ---------------------------------------------------------------- cache


def _cache_key(config: SpriteConfig, seed: int, size: int) -> str:
    text = json.dumps([CACHE_VERSION, dataclasses.asdict(config), seed, size], sort_keys=True)
    return "sprites-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _array_specs(config: SpriteConfig, size: int) -> dict[str, tuple[tuple[int, ...], str]]:
    t, s, k = config.num_frames, config.image_size, config.max_objects
    return {
        "segmentation": ((size, t, s, s), "uint8"),
        "num_objects": ((size,), "int16"),
        "shapes": ((size, k), "int8"),
        "aspect": ((size, k), "float32"),
        "depth": ((size, k), "int8"),
        "centers": ((size, t, k, 2), "float32"),
        "radii": ((size, t, k), "float32"),
        "angles": ((size, t, k), "float32"),
        "colours": ((size, t, k, 3), "uint8"),
    }


def _digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _meta(config: SpriteConfig, seed: int, size: int) -> dict[str, Any]:
    meta = {"version": CACHE_VERSION, "config": dataclasses.asdict(config), "seed": seed, "size": size}
    return json.loads(json.dumps(meta))  # tuples become lists, as they read back


def write_cache(path: Path, config: SpriteConfig, seed: int, size: int) -> None:
    """Generate clips ``0 .. size-1`` into the folder ``path``, atomically: they are
    written into a temporary folder beside it that is renamed when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        specs = _array_specs(config, size)
        arrays = {
            n: np.lib.format.open_memmap(tmp / f"{n}.npy", mode="w+", dtype=d, shape=s)
            for n, (s, d) in specs.items()
        }
        shown = sys.stderr.isatty()  # a bar for a person watching, nothing in logs
        for i in track(range(size), description="sprite clips", disable=not shown, transient=True):
            _store(arrays, i, generate_clip(config, seed, i), config.max_objects)
        for a in arrays.values():
            a.flush()
        del arrays
        meta = _meta(config, seed, size) | {"digests": {n: _digest(tmp / f"{n}.npy") for n in specs}}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        os.replace(tmp, path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (path / "meta.json").is_file():  # another process finished first: use theirs
            raise InputError(f"cannot write sprite cache {path}: {exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _store(arrays: dict[str, np.ndarray], i: int, clip: Clip, k_max: int) -> None:
    arrays["segmentation"][i] = clip.segmentation
    arrays["num_objects"][i] = clip.tracks.num_objects
    for name, value in _pad_tracks(clip.tracks, k_max).items():
        arrays[name][i] = value


def load_cache(
    path: Path, config: SpriteConfig, seed: int, size: int, *, verify: bool = True
) -> dict[str, np.ndarray]:
    """The cached arrays, memory-mapped, after checking that they are complete and
    for this config, and (``verify``) that they match their checksums."""
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"sprite cache {path} is corrupt (meta.json: {exc}); delete the folder") from None
    if not isinstance(meta, dict) or {k: meta.get(k) for k in _meta(config, seed, size)} != _meta(
        config, seed, size
    ):
        raise InputError(
            f"sprite cache {path} was written for another config, seed or size; delete the folder"
        )
    return {n: _load_array(path, n, spec, meta, verify) for n, spec in _array_specs(config, size).items()}


def _load_array(
    path: Path, name: str, spec: tuple[tuple[int, ...], str], meta: dict[str, Any], verify: bool
) -> np.ndarray:
    file = path / f"{name}.npy"
    try:
        array = np.load(file, mmap_mode="r", allow_pickle=False)
        intact = not verify or _digest(file) == meta.get("digests", {}).get(name)
    except (OSError, ValueError) as exc:
        raise InputError(f"sprite cache file {file} is corrupt or truncated ({exc}); delete {path}") from None
    if (array.shape, str(array.dtype)) != (spec[0], spec[1]) or not intact:
        raise InputError(
            f"sprite cache file {file} is corrupt or truncated (checksum/shape mismatch); delete {path}"
        )
    return array


def _clip_from_cache(arrays: dict[str, np.ndarray], i: int) -> Clip:
    k = int(arrays["num_objects"][i])
    tracks = _unpad_tracks({n: np.array(arrays[n][i]) for n in _TRACK_FIELDS}, k)
    ids = np.array(arrays["segmentation"][i])
    return Clip(paint(ids, tracks.colours), ids, tracks)


# ---------------------------------------------------------------- dataset


class VideoSprites(Dataset[dict[str, torch.Tensor]]):
    """Sprite clips as dicts of tensors (K_max = ``config.max_objects``):

    - ``video`` (T, 3, H, W) float32 in [0, 1]
    - ``segmentation`` (T, H, W) int64: 0 background, k sprite with track id k
    - ``masks`` (T, K_max+1, H, W) bool: channel 0 the background, channel k the
      visible pixels of track k (one-hot of ``segmentation``; empty for absent sprites)
    - ``ids`` (K_max,) int64: the track id of channel k (= k) or 0 where no sprite is
    - ``num_objects`` () int64
    - ``shapes`` (K_max,) int64: index into :data:`SHAPES`, -1 padding
    - ``depth`` (K_max,) int64: paint order, 0 at the back, -1 padding
    - ``centers`` (T, K_max, 2) float32: (x, y) in pixels, 0 padding
    - ``colours`` (T, K_max, 3) float32 in [0, 1], 0 padding

    ``size=None`` is the endless procedural stream; a finite set with ``cache_dir``
    is generated once into that folder and memory-mapped from then on.
    """

    def __init__(
        self, config: SpriteConfig, *, seed: int, size: int | None, cache_dir: str | Path | None = None
    ):
        if size is not None and size < 0:
            raise ConfigError(f"sprite dataset size must be >= 0, got {size}")
        self.config, self.seed, self.size = config, seed, size
        self.procedural = size is None
        self.cache_path = (
            None if cache_dir is None or size is None else Path(cache_dir) / _cache_key(config, seed, size)
        )
        self._arrays: dict[str, np.ndarray] | None = None
        if self.cache_path is not None:
            if not self.cache_path.exists():
                say(f"generating {size} sprite clips into {self.cache_path} (once; later runs read them)")
                write_cache(self.cache_path, config, seed, size)  # type: ignore[arg-type]
            self._arrays = load_cache(self.cache_path, config, seed, size)  # type: ignore[arg-type]

    def __getstate__(self) -> dict[str, Any]:
        # pickling a memmap copies the whole array; workers re-open the files instead
        return self.__dict__ | {"_arrays": None}

    def __len__(self) -> int:
        if self.size is None:
            raise TypeError("a procedural dataset has no length")
        return self.size

    def clip(self, index: int) -> Clip:
        if index < 0 or (self.size is not None and index >= self.size):
            raise IndexError(index)
        if self.cache_path is None:
            return generate_clip(self.config, self.seed, index)
        if self._arrays is None:  # a worker process: the files were verified by the parent
            self._arrays = load_cache(self.cache_path, self.config, self.seed, self.size, verify=False)  # type: ignore[arg-type]
        return _clip_from_cache(self._arrays, index)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return clip_to_sample(self.clip(index), self.config.max_objects)


# ---------------------------------------------------------------- datamodules

VMDSVariant = Literal[
    "standard", "occlusion", "same-colour", "small", "large", "rotation", "size-change", "colour-change"
]


class SpritesData(DataModule):
    """Sprite clips: endless procedural training stream (unless ``train_size``),
    finite validation and test sets, optionally cached in ``cache_dir``."""

    def __init__(
        self,
        *,
        config: SpriteConfig,
        seed: int,
        train_size: int | None,
        val_size: int,
        test_size: int,
        cache_dir: str | None,
        batch_size: int,
        eval_batch_size: int,
        num_workers: int,
    ) -> None:
        super().__init__(
            seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
        self.config, self.cache_dir = config, cache_dir
        self.sizes: dict[Split, int | None] = {"train": train_size, "val": val_size, "test": test_size}

    upload = "video"

    def from_video(self, frames: np.ndarray) -> dict[str, torch.Tensor]:
        """A video as a test clip's ``video``: ``num_frames`` frames spread over it, resized, in [0, 1]."""
        return {"video": clip_frames(frames, self.config.num_frames, self.config.image_size)}  # (T, 3, S, S)

    def build(self, split: Split) -> VideoSprites:
        offset = {"train": 0, "val": 1_000_003, "test": 2_000_029}[split]  # disjoint streams
        return VideoSprites(
            self.config, seed=self.seed + offset, size=self.sizes[split], cache_dir=self.cache_dir
        )


def _resized(
    config: SpriteConfig,
    image_size: int,
    num_frames: int,
    min_objects: int | None = None,
    max_objects: int | None = None,
) -> SpriteConfig:
    """The preset at another size and length; ``None`` keeps the preset's number of sprites."""
    return dataclasses.replace(
        config,
        image_size=image_size,
        num_frames=num_frames,
        min_objects=config.min_objects if min_objects is None else min_objects,
        max_objects=config.max_objects if max_objects is None else max_objects,
    )


@register_datamodule("vmds")
class VMDSData(SpritesData):
    """Video Multi-dSprites style clips (1-4 sprites, curved paths, occlusion)."""

    def __init__(
        self,
        *,
        seed: int,
        variant: VMDSVariant = "standard",
        image_size: int = 64,
        num_frames: int = 10,
        min_objects: int | None = None,  # None: the variant's (1-4 sprites; 2-4 for occlusion)
        max_objects: int | None = None,
        train_size: int | None = None,
        val_size: int = 500,
        test_size: int = 1000,
        cache_dir: str | None = None,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        num_workers: int = 0,
    ) -> None:
        preset = "vmds" if variant == "standard" else f"vmds-{variant}"
        super().__init__(
            config=_resized(sprite_preset(preset), image_size, num_frames, min_objects, max_objects),
            seed=seed,
            train_size=train_size,
            val_size=val_size,
            test_size=test_size,
            cache_dir=cache_dir,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
        )


@register_datamodule("spmot")
class SpMOTData(SpritesData):
    """Sprites-MOT style clips (0-3 sprites, straight lines at constant speed)."""

    def __init__(
        self,
        *,
        seed: int,
        image_size: int = 64,
        num_frames: int = 10,
        train_size: int | None = None,
        val_size: int = 500,
        test_size: int = 1000,
        cache_dir: str | None = None,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            config=_resized(SPRITE_PRESETS["spmot"], image_size, num_frames),
            seed=seed,
            train_size=train_size,
            val_size=val_size,
            test_size=test_size,
            cache_dir=cache_dir,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
        )
