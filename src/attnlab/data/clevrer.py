"""CLEVRER in its released format: mp4 videos, per-video annotation JSON, questions.

CLEVRER (Yi et al. 2020, "CLEVRER: CoLlision Events for Video REpresentation and
Reasoning", arXiv:1910.01442) ships

* ``video_XXXXX.mp4`` (128 frames of 480x320), usually in folders of 1000
  (``video_train/video_00000-01000/``);
* ``annotation_XXXXX.json`` with ``object_property`` (``object_id``, ``color``,
  ``material``, ``shape``), ``motion_trajectory`` (one entry per frame:
  ``frame_id`` and ``objects`` with ``object_id``, ``location`` [x, y, z],
  ``inside_camera_view``, ...) and ``collision`` (``object_ids`` [id, id],
  ``frame_id``, ``location``);
* question files (``train.json``, ...): a list of ``{"scene_index", "questions":
  [...]}``.

:class:`ClevrerVideos` reads such a folder, sub-samples frames (a start, a stride
and a fixed count) and resizes them to the model's size while decoding (PyAV,
area interpolation). Files that are missing, empty, corrupt or inconsistent with
each other are one-line :class:`~attnlab.errors.InputError` s naming the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from torch.utils.data import Dataset

from attnlab.errors import ConfigError, InputError

COLORS = ("gray", "red", "blue", "green", "brown", "cyan", "purple", "yellow")
MATERIALS = ("metal", "rubber")
SHAPES = ("cube", "sphere", "cylinder")

_VIDEO_NAME = re.compile(r"video_(\d+)\.mp4")
_ANNOTATION_NAME = re.compile(r"annotation_(\d+)\.json")


@dataclass(frozen=True)
class ClevrerObject:
    object_id: int
    color: str
    material: str
    shape: str


@dataclass(frozen=True)
class Collision:
    objects: tuple[int, int]
    frame: int
    location: tuple[float, float, float]


@dataclass(frozen=True)
class ClevrerAnnotation:
    scene_index: int | None
    video_filename: str | None
    objects: tuple[ClevrerObject, ...]
    locations: np.ndarray  # (F, N, 3) float32, per frame and object (in object_property order)
    in_view: np.ndarray  # (F, N) bool: listed in that frame and inside the camera view
    collisions: tuple[Collision, ...]

    @property
    def num_frames(self) -> int:
        return int(self.locations.shape[0])


# ---------------------------------------------------------------- JSON


def _load_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise InputError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{what} {path} is not readable JSON: {exc}") from None


def _field(record: Any, key: str, path: Path, where: str) -> Any:
    if not isinstance(record, dict) or key not in record:
        raise InputError(f"annotation {path}: {where} has no '{key}'")
    return record[key]


def _objects(data: dict[str, Any], path: Path) -> tuple[ClevrerObject, ...]:
    objects = []
    for i, rec in enumerate(_field(data, "object_property", path, "the file")):
        where = f"object_property[{i}]"
        obj = ClevrerObject(
            *(_field(rec, k, path, where) for k in ("object_id", "color", "material", "shape"))
        )
        for value, vocab in ((obj.color, COLORS), (obj.material, MATERIALS), (obj.shape, SHAPES)):
            if value not in vocab:
                raise InputError(f"annotation {path}: {where} has unknown value '{value}' (known: {vocab})")
        objects.append(obj)
    return tuple(objects)


def _trajectory(data: dict[str, Any], path: Path, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    frames = _field(data, "motion_trajectory", path, "the file")
    if not isinstance(frames, list) or not frames:
        raise InputError(f"annotation {path}: motion_trajectory must be a non-empty list")
    locations = np.zeros((len(frames), len(ids), 3), dtype=np.float32)
    in_view = np.zeros((len(frames), len(ids)), dtype=bool)
    for f, entry in enumerate(frames):
        if _field(entry, "frame_id", path, f"motion_trajectory[{f}]") != f:
            raise InputError(
                f"annotation {path}: motion_trajectory[{f}] has frame_id {entry['frame_id']}, expected {f}"
            )
        for rec in _field(entry, "objects", path, f"motion_trajectory[{f}]"):
            oid = _field(rec, "object_id", path, f"motion_trajectory[{f}].objects")
            if oid not in ids:
                raise InputError(f"annotation {path}: frame {f} names object {oid}, not in object_property")
            k = ids.index(oid)
            locations[f, k] = _field(rec, "location", path, f"motion_trajectory[{f}] object {oid}")
            in_view[f, k] = bool(rec.get("inside_camera_view", True))
    return locations, in_view


def _collisions(data: dict[str, Any], path: Path) -> tuple[Collision, ...]:
    out = []
    for i, rec in enumerate(data.get("collision", [])):
        pair = _field(rec, "object_ids", path, f"collision[{i}]")
        out.append(
            Collision(
                tuple(pair), _field(rec, "frame_id", path, f"collision[{i}]"), tuple(rec.get("location", ()))
            )
        )
    return tuple(out)


def read_annotation(path: str | Path) -> ClevrerAnnotation:
    """Parse and check one ``annotation_XXXXX.json``."""
    path = Path(path)
    data = _load_json(path, "annotation")
    if not isinstance(data, dict):
        raise InputError(f"annotation {path} must hold a JSON object, got {type(data).__name__}")
    try:
        return _parse_annotation(data, path)
    except InputError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # wrong types deep inside the JSON
        raise InputError(f"annotation {path} is malformed: {exc!r}") from None


def _parse_annotation(data: dict[str, Any], path: Path) -> ClevrerAnnotation:
    objects = _objects(data, path)
    locations, in_view = _trajectory(data, path, [o.object_id for o in objects])
    return ClevrerAnnotation(
        scene_index=data.get("scene_index"),
        video_filename=data.get("video_filename"),
        objects=objects,
        locations=locations,
        in_view=in_view,
        collisions=_collisions(data, path),
    )


def read_questions(path: str | Path) -> dict[int, list[dict[str, Any]]]:
    """A CLEVRER question file as ``{scene_index: [question, ...]}``."""
    path = Path(path)
    data = _load_json(path, "question file")
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise InputError(f"question file {path} must hold a list of objects")
    out: dict[int, list[dict[str, Any]]] = {}
    for i, entry in enumerate(data):
        if not isinstance(entry.get("scene_index"), int) or not isinstance(entry.get("questions"), list):
            raise InputError(
                f"question file {path}: entry {i} needs an int 'scene_index' and a 'questions' list"
            )
        out.setdefault(entry["scene_index"], []).extend(entry["questions"])
    return out


# ---------------------------------------------------------------- video


def frame_indices(total: int, *, start: int = 0, stride: int = 1, num_frames: int | None = None) -> list[int]:
    """``start, start + stride, ...``: all that fit in ``total`` frames, or exactly ``num_frames``."""
    picked = list(range(start, total, stride))
    need = 1 if num_frames is None else num_frames
    if len(picked) < need:
        raise InputError(
            f"a video of {total} frames has {len(picked)} frames from {start} every {stride}; {need} needed"
        )
    return picked if num_frames is None else picked[:num_frames]


def read_video(
    path: str | Path, indices: Sequence[int] | None = None, size: tuple[int, int] | None = None
) -> tuple[np.ndarray, int]:
    """Decode ``path``; return the frames at ``indices`` (all if None) as (T, H, W, 3)
    uint8, resized to ``size`` = (H, W) if given, and the video's frame count."""
    wanted = None if indices is None else set(indices)
    frames, total = _decode(Path(path), lambda i: wanted is None or i in wanted, size)
    return _pick(frames, range(total) if indices is None else indices, Path(path), total), total


def _pick(frames: dict[int, np.ndarray], indices: Sequence[int], path: Path, total: int) -> np.ndarray:
    missing = [i for i in indices if i not in frames]
    if missing or not indices:
        raise InputError(
            f"video {path} has {total} frames; frame {missing[0] if missing else 0} was asked for"
        )
    return np.stack([frames[i] for i in indices])


def _decode(
    path: Path, keep: Callable[[int], bool], size: tuple[int, int] | None
) -> tuple[dict[int, np.ndarray], int]:
    if not path.is_file():
        raise InputError(f"video not found: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"video {path} is empty")
    try:
        return _decode_frames(path, keep, size)
    except av.FFmpegError as exc:
        raise InputError(f"video {path} is corrupt or not a video: {exc}") from None


def _decode_frames(
    path: Path, keep: Callable[[int], bool], size: tuple[int, int] | None
) -> tuple[dict[int, np.ndarray], int]:
    height, width = size if size is not None else (None, None)
    frames: dict[int, np.ndarray] = {}
    total = 0
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise InputError(f"video {path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        # decode everything (the frame count is checked against the annotation) but
        # convert and resize only the frames that are kept
        for frame in container.decode(stream):
            if keep(total):
                frames[total] = frame.to_ndarray(
                    format="rgb24", width=width, height=height, interpolation="AREA"
                )
            total += 1
    return frames, total


# ---------------------------------------------------------------- dataset


def _index_files(folder: Path, pattern: re.Pattern[str], what: str) -> dict[int, Path]:
    if not folder.is_dir():
        raise InputError(f"CLEVRER {what} folder not found: {folder}")
    found: dict[int, Path] = {}
    for path in sorted(folder.rglob("*")):
        match = pattern.fullmatch(path.name)
        if match:
            index = int(match.group(1))
            if index in found:
                raise InputError(f"two CLEVRER {what} files for scene {index}: {found[index]} and {path}")
            found[index] = path
    return found


class ClevrerVideos(Dataset[dict[str, torch.Tensor]]):
    """The videos under ``video_dir`` (searched recursively for ``video_XXXXX.mp4``),
    with their annotations under ``annotation_dir`` when given. Samples:

    - ``video`` (T, 3, H, W) float32 in [0, 1]; T = ``num_frames`` or all frames
      from ``start`` every ``stride``; (H, W) = ``size`` or the video's own
    - ``frame_indices`` (T,) int64, ``scene_index`` () int64
    - with annotations, objects in ``object_property`` order padded to
      ``max_objects``: ``object_mask`` (K,) bool, ``properties`` (K, 3) int64
      (indices into COLORS, MATERIALS, SHAPES; -1 padding), ``locations``
      (T, K, 3) float32 and ``in_view`` (T, K) bool at the sampled frames

    Questions (``question_file``) and collisions are per scene through
    :meth:`questions` and :meth:`annotation`.
    """

    def __init__(
        self,
        video_dir: str | Path,
        *,
        annotation_dir: str | Path | None = None,
        question_file: str | Path | None = None,
        num_frames: int | None = None,
        stride: int = 1,
        start: int = 0,
        size: tuple[int, int] | None = (64, 64),
        max_objects: int = 8,
    ):
        if stride < 1 or start < 0 or (num_frames is not None and num_frames < 1) or max_objects < 1:
            raise ConfigError("CLEVRER needs stride >= 1, start >= 0, num_frames >= 1, max_objects >= 1")
        if size is not None and (len(size) != 2 or min(size) < 1):
            raise ConfigError(f"CLEVRER size must be (height, width) >= 1, got {size}")
        self.num_frames, self.stride, self.start, self.max_objects = num_frames, stride, start, max_objects
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.videos = _index_files(Path(video_dir), _VIDEO_NAME, "video")
        if not self.videos:
            raise InputError(f"no video_XXXXX.mp4 files under {video_dir}")
        self.scenes = sorted(self.videos)
        self.annotations = None if annotation_dir is None else self._match_annotations(Path(annotation_dir))
        self._questions = None if question_file is None else read_questions(question_file)

    def _match_annotations(self, folder: Path) -> dict[int, Path]:
        found = _index_files(folder, _ANNOTATION_NAME, "annotation")
        no_annotation = [s for s in self.scenes if s not in found]
        if no_annotation:
            raise InputError(
                f"video {self.videos[no_annotation[0]]} has no annotation_{no_annotation[0]:05d}.json"
            )
        no_video = sorted(set(found) - set(self.videos))
        if no_video:
            raise InputError(
                f"annotation {found[no_video[0]]} has no video_{no_video[0]:05d}.mp4 under the video folder"
            )
        return found

    def __len__(self) -> int:
        return len(self.scenes)

    def annotation(self, index: int) -> ClevrerAnnotation:
        if self.annotations is None:
            raise InputError("this CLEVRER dataset was built without annotation_dir")
        return read_annotation(self.annotations[self.scenes[index]])

    def questions(self, index: int) -> list[dict[str, Any]]:
        if self._questions is None:
            raise InputError("this CLEVRER dataset was built without question_file")
        return self._questions.get(self.scenes[index], [])

    def _keep(self, i: int) -> bool:
        step, offset = divmod(i - self.start, self.stride)
        return i >= self.start and offset == 0 and (self.num_frames is None or step < self.num_frames)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        scene = self.scenes[index]
        path = self.videos[scene]
        frames_by_index, total = _decode(path, self._keep, self.size)
        picked = frame_indices(total, start=self.start, stride=self.stride, num_frames=self.num_frames)
        frames = _pick(frames_by_index, picked, path, total)
        sample = {
            "video": torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255),  # (T, 3, H, W)
            "frame_indices": torch.tensor(picked, dtype=torch.int64),
            "scene_index": torch.tensor(scene),
        }
        if self.annotations is not None:
            sample |= self._objects(self.annotation(index), path, total, picked)
        return sample

    def _objects(
        self, ann: ClevrerAnnotation, video: Path, total: int, picked: list[int]
    ) -> dict[str, torch.Tensor]:
        if ann.num_frames != total:
            raise InputError(f"annotation of {video.name} has {ann.num_frames} frames, the video has {total}")
        if ann.video_filename is not None and Path(ann.video_filename).name != video.name:
            raise InputError(f"annotation for {video.name} names video '{ann.video_filename}'")
        n = len(ann.objects)
        if n > self.max_objects:
            raise InputError(f"scene {video.name} has {n} objects, more than max_objects={self.max_objects}")
        k = self.max_objects
        props = torch.full((k, 3), -1, dtype=torch.int64)
        for i, o in enumerate(ann.objects):
            props[i] = torch.tensor(
                [COLORS.index(o.color), MATERIALS.index(o.material), SHAPES.index(o.shape)]
            )
        locations = np.zeros((len(picked), k, 3), np.float32)
        in_view = np.zeros((len(picked), k), bool)
        locations[:, :n], in_view[:, :n] = ann.locations[picked], ann.in_view[picked]
        return {
            "object_mask": torch.arange(k) < n,
            "properties": props,
            "locations": torch.from_numpy(locations),
            "in_view": torch.from_numpy(in_view),
        }
