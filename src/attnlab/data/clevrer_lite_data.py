"""CLEVRER-lite (or CLEVRER) clips for the object-centric task: the ``clevrer-lite`` datamodule.

The dataset is generated on first use (:func:`attnlab.data.clevrer_lite.generate_dataset`,
the generator's defaults at ``image_size`` with CLEVRER's share of questions, see
:data:`QUESTIONS`) into ``cache_dir/<hash of generator config and dataset_seed>``
(default ``~/.cache/attnlab/clevrer-lite``; the ``clevrer-qa`` datamodule shares the
folder), or read from ``root``: any folder in CLEVRER's
layout (videos ``video_XXXXX.mp4``, annotations ``annotation_XXXXX.json`` and, from
the generator, masks ``mask_XXXXX.npz``, searched recursively), real CLEVRER too.

Splits are scene-index ranges: train ``[0, train_size)``, val the next ``val_size``
indices, test the next ``test_size``. A generated folder that holds more videos than
that is used as it is; one that holds fewer is extended (the first videos do not change).

Items are shaped like the sprite datamodules' (:mod:`attnlab.data.sprites`), so the
object-centric task computes FG-ARI and MOT on them:

- ``video`` (T, 3, S, S) float32 in [0, 1]: ``num_frames`` frames from ``start`` every ``stride``
- ``segmentation`` (T, S, S) int64: 0 ground, k + 1 for the visible pixels of object_id k
- ``masks`` (T, 1 + K, S, S) bool: channel 0 the ground, channel k the object with track id k
- ``ids`` (K,) int64: k where the scene has an object k - 1, else 0; ``num_objects`` () int64
- ``scene_index`` () int64

with K = ``max_objects``. A folder without masks (real CLEVRER) gives all-ground
segmentations, so FG-ARI and MOT are NaN there.

Decoding an mp4 costs ~10 ms, so the sub-sampled frames and segmentations of each
split are decoded once into ``.npy`` files that are memory-mapped from then on (a
``.attnlab-cache`` folder inside the data folder, or under ``~/.cache/attnlab`` when
that is not writable). The cache key covers the clip settings, the scenes and the
files' sizes and times, so changed data is decoded again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from filelock import FileLock, Timeout
from torch.utils.data import Dataset

from attnlab.data._registry import register_datamodule
from attnlab.data.clevrer import read_annotation, read_video
from attnlab.data.clevrer_lite import ClevrerLiteConfig, generate_dataset, read_masks
from attnlab.data.clevrer_lite.generate import FORMAT_VERSION
from attnlab.data.clevrer_lite.questions import QuestionConfig
from attnlab.data.clevrer_lite.writer import CONFIG_FILE, QUESTION_FILE
from attnlab.data.datamodule import DataModule, Split
from attnlab.errors import ConfigError, InputError
from attnlab.status import say

log = logging.getLogger(__name__)

DEFAULT_CACHE = "~/.cache/attnlab/clevrer-lite"
DERIVED = ".attnlab-cache"  # decoded clips, oracle features and latents, inside the data folder
CACHE_VERSION = 1
SPLITS: tuple[Split, ...] = ("train", "val", "test")

_FILES = {
    "video": re.compile(r"video_(\d+)\.mp4"),
    "annotation": re.compile(r"annotation_(\d+)\.json"),
    "mask": re.compile(r"mask_(\d+)\.npz"),
}


# ---------------------------------------------------------------- the data folder


# CLEVRER asks about 22 descriptive and 8.5 multiple-choice questions per video; the generator's
# defaults ask 8 and up to 5. Asking more costs little (rendering dominates) and gives the question
# models of a small CPU-sized dataset three times the descriptive questions to learn from.
QUESTIONS = QuestionConfig(
    descriptive_per_video=24, explanatory_per_video=4, predictive_per_video=1, counterfactual_per_video=3
)


def generator_config(image_size: int, max_objects: int) -> ClevrerLiteConfig:
    """The generator settings of the datamodules: its defaults, at this size, with :data:`QUESTIONS`."""
    return ClevrerLiteConfig(
        width=image_size, height=image_size, max_objects=max_objects, questions=QUESTIONS
    )


def generated_root(config: ClevrerLiteConfig, dataset_seed: int, cache_dir: str | Path) -> Path:
    """Where the dataset of ``config`` and ``dataset_seed`` lives: ``cache_dir/<hash>``."""
    text = json.dumps([FORMAT_VERSION, dataclasses.asdict(config), dataset_seed], sort_keys=True)
    return Path(cache_dir).expanduser() / hashlib.sha256(text.encode()).hexdigest()[:16]


def _finished_videos(root: Path) -> int:
    try:
        meta = json.loads((root / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return 0
    done = isinstance(meta, dict) and meta.get("finished") and (root / QUESTION_FILE).is_file()
    return int(meta.get("num_videos", 0)) if done else 0


@contextlib.contextmanager
def _generating(root: Path) -> Iterator[None]:
    """Hold ``root``'s lock: runs started side by side (one per seed) share the generated folder,
    so one generates it and the others wait for it."""
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(root.parent / f"{root.name}.lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            say(f"waiting for another run to finish generating {root}")
            lock.acquire()
    except OSError as exc:
        raise InputError(f"cannot write to the CLEVRER-lite cache {root.parent}: {exc}") from None
    try:
        yield
    finally:
        lock.release()


def ensure_generated(
    config: ClevrerLiteConfig, dataset_seed: int, num_videos: int, cache_dir: str | Path, workers: int
) -> Path:
    """The generated folder with at least ``num_videos`` videos, made or extended if needed."""
    root = generated_root(config, dataset_seed, cache_dir)
    if _finished_videos(root) >= num_videos:  # read-only caches stay readable: no lock needed
        return root
    with _generating(root):
        if _finished_videos(root) < num_videos:  # not made by the run this one waited for
            say(f"generating {num_videos} CLEVRER-lite videos into {root} (once; later runs read them)")
            generate_dataset(config, root, num_videos, dataset_seed, workers, progress=sys.stderr.isatty())
    return root


@dataclass(frozen=True)
class ClevrerFolder:
    """The files of a CLEVRER-format folder by scene index."""

    root: Path
    videos: dict[int, Path]
    annotations: dict[int, Path]
    masks: dict[int, Path]

    @classmethod
    def scan(cls, root: str | Path) -> ClevrerFolder:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise InputError(f"CLEVRER folder not found: {root}")
        found: dict[str, dict[int, Path]] = {kind: {} for kind in _FILES}
        for path in sorted(root.rglob("*")):
            for kind, pattern in _FILES.items():
                match = pattern.fullmatch(path.name)
                if match:
                    index = int(match.group(1))
                    if index in found[kind]:
                        raise InputError(
                            f"two {kind} files for scene {index}: {found[kind][index]} and {path}"
                        )
                    found[kind][index] = path
        if not found["video"]:
            raise InputError(f"no video_XXXXX.mp4 files under {root}")
        return cls(root, found["video"], found["annotation"], found["mask"])

    def derived_dir(self) -> Path:
        """A writable folder for what is computed from this data: inside it, or in the user cache."""
        inside = self.root / DERIVED
        try:
            inside.mkdir(exist_ok=True)
            with tempfile.TemporaryFile(dir=inside):
                pass
            return inside
        except OSError:
            digest = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:16]
            outside = Path("~/.cache/attnlab/clevrer-derived").expanduser() / digest
            outside.mkdir(parents=True, exist_ok=True)
            return outside

    def fingerprint(self, scenes: list[int], kinds: tuple[str, ...]) -> list[Any]:
        """Sizes and modification times of the scenes' files: changes when the data does."""
        files = {"video": self.videos, "annotation": self.annotations, "mask": self.masks}
        out: list[Any] = []
        for kind in kinds:
            for s in scenes:
                path = files[kind].get(s)
                stat = path.stat() if path is not None else None
                out.append(None if stat is None else [s, stat.st_size, stat.st_mtime_ns])
        return out


def split_ranges(sizes: dict[Split, int]) -> dict[Split, range]:
    """Scene-index ranges of the splits: train first, then val, then test."""
    out, lo = {}, 0
    for split in SPLITS:
        out[split] = range(lo, lo + sizes[split])
        lo += sizes[split]
    return out


def check_sizes(train_size: int, val_size: int, test_size: int) -> dict[Split, int]:
    if min(train_size, val_size, test_size) < 1:
        raise ConfigError(
            f"data.train_size, val_size and test_size must be >= 1, got {train_size}, {val_size}, {test_size}"
        )
    return {"train": train_size, "val": val_size, "test": test_size}


# ---------------------------------------------------------------- decoded clips


@dataclass(frozen=True)
class ClipSpec:
    """Which frames of a video make a clip, at which size."""

    num_frames: int
    stride: int
    start: int
    image_size: int

    def __post_init__(self) -> None:
        if self.num_frames < 1 or self.stride < 1 or self.start < 0 or self.image_size < 8:
            raise ConfigError(
                "data.num_frames >= 1, stride >= 1, start >= 0 and a frame size (image_size, clip_size) "
                "of at least 8 are needed, got "
                f"{self.num_frames}, {self.stride}, {self.start}, {self.image_size}"
            )

    @property
    def indices(self) -> list[int]:
        return [self.start + i * self.stride for i in range(self.num_frames)]

    @property
    def needed(self) -> int:
        """How many frames a video must have."""
        return self.indices[-1] + 1

    def too_short(self, what: str, total: int) -> str:
        return (
            f"{what} has {total} frames, {self.needed} needed "
            f"(data.num_frames={self.num_frames} every data.stride={self.stride} "
            f"from data.start={self.start})"
        )


def clip_spec(num_frames: int, stride: int, start: int, image_size: int, clip_size: int | None) -> ClipSpec:
    """The clips of videos rendered at ``image_size``, resized to ``clip_size`` (area) if it is given."""
    return ClipSpec(num_frames, stride, start, image_size if clip_size is None else clip_size)


def _frame_count(path: Path) -> int | None:
    """The video's frame count from its container, or None when the container does not say."""
    try:
        with av.open(str(path)) as container:
            count = container.streams.video[0].frames if container.streams.video else 0
    except av.FFmpegError as exc:
        raise InputError(f"video {path} is corrupt or not a video: {exc}") from None
    return int(count) or None


def _nearest(ids: np.ndarray, size: int) -> np.ndarray:
    """Id maps (T, h, w) resized to (T, size, size) by nearest neighbour (labels must not blend)."""
    h, w = ids.shape[1:]
    if (h, w) == (size, size):
        return ids
    rows = ((np.arange(size) + 0.5) * h / size).astype(np.int64)
    cols = ((np.arange(size) + 0.5) * w / size).astype(np.int64)
    return ids[:, rows[:, None], cols[None, :]]


class ClipCache:
    """The decoded clips of some scenes, as memory-mapped arrays in one folder:

    ``frames`` (N, T, S, S, 3) uint8, ``segmentation`` (N, T, S, S) uint8 (0 where a
    scene has no mask file), ``num_objects`` (N,) int16, ``scenes`` (N,) int64 and
    ``ok`` (N,) bool: False for a video with fewer frames than the clip needs (its
    arrays are zero; ``problems`` says why).
    """

    def __init__(self, folder: ClevrerFolder, scenes: list[int], spec: ClipSpec) -> None:
        self.spec, self.scenes = spec, list(scenes)
        key = json.dumps(
            [
                CACHE_VERSION,
                dataclasses.asdict(spec),
                self.scenes,
                folder.fingerprint(self.scenes, tuple(_FILES)),
            ]
        )
        self.path = folder.derived_dir() / f"clips-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
        if not (self.path / "meta.json").is_file():
            self._write(folder)
        self.problems: dict[int, str] = json.loads((self.path / "meta.json").read_text())["problems"]
        self.problems = {int(k): v for k, v in self.problems.items()}
        self._arrays: dict[str, np.ndarray] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__ | {"_arrays": None}  # workers re-open the memory maps

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            names = ("frames", "segmentation", "num_objects", "scenes", "ok")
            self._arrays = {n: np.load(self.path / f"{n}.npy", mmap_mode="r") for n in names}
        return self._arrays

    def _write(self, folder: ClevrerFolder) -> None:
        n, t, s = len(self.scenes), self.spec.num_frames, self.spec.image_size
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"))
        try:
            shapes = {
                "frames": ((n, t, s, s, 3), np.uint8),
                "segmentation": ((n, t, s, s), np.uint8),
                "num_objects": ((n,), np.int16),
                "scenes": ((n,), np.int64),
                "ok": ((n,), np.bool_),
            }
            arrays = {
                name: np.lib.format.open_memmap(tmp / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
                for name, (shape, dtype) in shapes.items()
            }
            problems = {}
            for row, scene in enumerate(self.scenes):
                problem = self._decode(folder, scene, row, arrays)
                if problem:
                    problems[scene] = problem
            for array in arrays.values():
                array.flush()
            del arrays
            (tmp / "meta.json").write_text(json.dumps({"scenes": self.scenes, "problems": problems}))
            os.replace(tmp, self.path)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if not (self.path / "meta.json").is_file():  # another process finished first: use theirs
                raise InputError(f"cannot write the clip cache {self.path}: {exc}") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _decode(self, folder: ClevrerFolder, scene: int, row: int, arrays: dict[str, np.ndarray]) -> str:
        """Fill row ``row``; return a problem ("" if none)."""
        spec, path = self.spec, folder.videos[scene]
        arrays["scenes"][row] = scene
        size = (spec.image_size, spec.image_size)
        total = _frame_count(path)
        if total is None:  # the container does not say: decode all of it to count
            frames, total = read_video(path, None, size)
            if total < spec.needed:
                return spec.too_short(f"video {path}", total)
            frames = frames[spec.indices]
        elif total < spec.needed:
            return spec.too_short(f"video {path}", total)
        else:
            frames, _ = read_video(path, spec.indices, size)
        arrays["frames"][row] = frames
        if scene in folder.masks:
            masks = read_masks(folder.masks[scene])
            ids = masks["ids"]
            if ids.shape[0] < spec.needed:
                return spec.too_short(f"mask file {folder.masks[scene]}", ids.shape[0])
            arrays["segmentation"][row] = _nearest(ids[spec.indices], spec.image_size)
            arrays["num_objects"][row] = masks["locations"].shape[1]
        elif scene in folder.annotations:
            arrays["num_objects"][row] = len(read_annotation(folder.annotations[scene]).objects)
        arrays["ok"][row] = True
        return ""

    def video(self, row: int) -> torch.Tensor:
        """(T, 3, S, S) float32 in [0, 1]."""
        frames = np.asarray(self.arrays["frames"][row]).transpose(0, 3, 1, 2)
        return torch.from_numpy(frames.astype(np.float32) / np.float32(255))


# ---------------------------------------------------------------- dataset


def broken_rows(cache: ClipCache, skip_broken: bool) -> list[int]:
    """Rows of the usable videos; a problem is an InputError unless ``skip_broken``."""
    if cache.problems and not skip_broken:
        first = next(iter(cache.problems.values()))
        raise InputError(f"{first}; fix the data or set data.skip_broken true to skip such videos")
    return [row for row, scene in enumerate(cache.scenes) if scene not in cache.problems]


class ClevrerClips(Dataset[dict[str, torch.Tensor]]):
    """Object-centric samples of the usable videos of a :class:`ClipCache` (keys in the module docstring)."""

    def __init__(self, cache: ClipCache, max_objects: int, *, skip_broken: bool = False) -> None:
        self.cache, self.max_objects = cache, max_objects
        self.rows = broken_rows(cache, skip_broken)
        self.skipped = len(cache.scenes) - len(self.rows)
        counts = cache.arrays["num_objects"]
        too_many = [(s, int(k)) for s, k in zip(cache.scenes, counts, strict=True) if k > max_objects]
        if too_many:
            scene, count = too_many[0]
            raise InputError(f"scene {scene} has {count} objects, more than data.max_objects={max_objects}")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row = self.rows[index]
        arrays, k = self.cache.arrays, self.max_objects
        seg = np.asarray(arrays["segmentation"][row])  # (T, S, S) uint8
        n = int(arrays["num_objects"][row])
        channels = np.arange(k + 1, dtype=np.uint8)[None, :, None, None]
        tracks = np.arange(1, k + 1)
        return {
            "video": self.cache.video(row),
            "segmentation": torch.from_numpy(seg.astype(np.int64)),
            "masks": torch.from_numpy(seg[:, None] == channels),
            "ids": torch.from_numpy(np.where(tracks <= n, tracks, 0)),
            "num_objects": torch.tensor(n, dtype=torch.int64),
            "scene_index": torch.tensor(int(arrays["scenes"][row]), dtype=torch.int64),
        }


# ---------------------------------------------------------------- datamodule


class ClevrerSource:
    """Where a datamodule's videos come from: a generated folder (made on first use) or ``root``."""

    def __init__(
        self,
        *,
        root: str | None,
        cache_dir: str | None,
        dataset_seed: int,
        image_size: int,
        max_objects: int,
        sizes: dict[Split, int],
        workers: int | None,
    ) -> None:
        if workers is not None and workers < 1:
            raise ConfigError(f"data.workers must be >= 1, got {workers}")
        if max_objects < 1:
            raise ConfigError(f"data.max_objects must be >= 1, got {max_objects}")
        self.root, self.sizes = root, sizes
        self.ranges = split_ranges(sizes)
        self.workers = workers or max(1, min(8, os.cpu_count() or 1))
        self.dataset_seed, self.cache_dir = dataset_seed, cache_dir or DEFAULT_CACHE
        # checked now, so that a bad size fails before any work
        self.config = None if root is not None else generator_config(image_size, max_objects)
        self._folder: ClevrerFolder | None = None

    def prepare(self) -> None:
        if self.config is not None:
            ensure_generated(
                self.config, self.dataset_seed, sum(self.sizes.values()), self.cache_dir, self.workers
            )

    @property
    def folder(self) -> ClevrerFolder:
        if self._folder is None:
            self.prepare()
            path = (
                Path(self.root)
                if self.config is None
                else generated_root(self.config, self.dataset_seed, self.cache_dir)
            )
            self._folder = ClevrerFolder.scan(path)
        return self._folder

    def scenes(self, split: Split) -> list[int]:
        """The split's scenes that have a video."""
        wanted = self.ranges[split]
        found = [s for s in sorted(self.folder.videos) if s in wanted]
        if not found:
            raise InputError(
                f"{self.folder.root} has no video in scene range [{wanted.start}, {wanted.stop}) "
                f"of the {split} split (data.train_size / val_size / test_size set the ranges)"
            )
        return found


@register_datamodule("clevrer-lite")
class ClevrerLiteData(DataModule):
    """CLEVRER-lite collision videos (generated on first use, or CLEVRER from ``root``), object-centric."""

    def __init__(
        self,
        *,
        seed: int,
        root: str | None = None,
        cache_dir: str | None = None,
        dataset_seed: int = 0,
        image_size: int = 64,
        clip_size: int | None = None,
        max_objects: int = 6,
        train_size: int = 600,
        val_size: int = 100,
        test_size: int = 100,
        num_frames: int = 10,
        stride: int = 3,
        start: int = 0,
        skip_broken: bool = False,
        workers: int | None = None,
        batch_size: int = 16,
        eval_batch_size: int = 16,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
        self.source = ClevrerSource(
            root=root,
            cache_dir=cache_dir,
            dataset_seed=dataset_seed,
            image_size=image_size,
            max_objects=max_objects,
            sizes=check_sizes(train_size, val_size, test_size),
            workers=workers,
        )
        self.spec = clip_spec(num_frames, stride, start, image_size, clip_size)
        self.max_objects, self.skip_broken = max_objects, skip_broken

    def prepare_data(self) -> None:
        self.source.prepare()

    def build(self, split: Split) -> ClevrerClips:
        cache = ClipCache(self.source.folder, self.source.scenes(split), self.spec)
        data = ClevrerClips(cache, self.max_objects, skip_broken=self.skip_broken)
        if data.skipped:
            log.warning(
                "clevrer-lite %s: skipped %d of %d videos (too short for the clip)",
                split,
                data.skipped,
                len(cache.scenes),
            )
        return data
