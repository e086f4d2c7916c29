"""Files in CLEVRER's layout: mp4 videos, annotation JSON, one question JSON; plus
the instance masks and the full simulation in a compact npz beside them.

::

    out_dir/
      config.json                                   generator config, seed, count
      questions.json                                [{scene_index, video_filename, questions}]
      videos/video_00000-01000/video_00000.mp4
      annotations/annotation_00000-01000/annotation_00000.json
      masks/mask_00000-01000/mask_00000.npz

An annotation holds CLEVRER's keys: ``scene_index``, ``video_filename``,
``object_property`` (``object_id``, ``color``, ``material``, ``shape``),
``motion_trajectory`` (per shown frame: ``frame_id`` and per object ``object_id``,
``location`` [x, y, z of its centre], ``orientation`` [0, 0, yaw], ``velocity``,
``angular_velocity`` (zero: nothing spins), ``inside_camera_view``) and
``collision`` (``object_ids``, ``frame_id``, ``location``) for the shown frames.
Each collision also repeats its pair under ``object``, the key
:mod:`attnlab.data.clevrer` reads.

A mask file holds ``ids`` (T, H, W) uint8 (0 ground, k + 1 object_id k: visible
pixels after occlusion) and the whole simulation including the held-back frames:
``locations`` (F, K, 3) float32, ``velocities`` (F, K, 2) float32, ``in_view``
(F, K) bool, ``collisions`` (C, 3) int32 rows of (frame, object_id, object_id).
Every file is written to a temporary name and renamed, so a file that exists is
complete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import av
import numpy as np

from attnlab.data.clevrer_lite.intersect import centre_height
from attnlab.errors import InputError

if TYPE_CHECKING:
    from attnlab.data.clevrer_lite.config import ClevrerLiteConfig
    from attnlab.data.clevrer_lite.scene import Scene

QUESTION_FILE = "questions.json"
CONFIG_FILE = "config.json"
PER_FOLDER = 1000  # CLEVRER's folders of 1000 files
CODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _bucket(index: int) -> str:
    lo = index // PER_FOLDER * PER_FOLDER
    return f"{lo:05d}-{lo + PER_FOLDER:05d}"


def video_path(root: Path, index: int) -> Path:
    return root / "videos" / f"video_{_bucket(index)}" / f"video_{index:05d}.mp4"


def annotation_path(root: Path, index: int) -> Path:
    return root / "annotations" / f"annotation_{_bucket(index)}" / f"annotation_{index:05d}.json"


def mask_path(root: Path, index: int) -> Path:
    return root / "masks" / f"mask_{_bucket(index)}" / f"mask_{index:05d}.npz"


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_video(path: Path, frames: np.ndarray, fps: int) -> None:
    """Frames (T, H, W, 3) uint8 as H.264 (yuv420p, near-lossless) in mp4."""

    def write(tmp: Path) -> None:
        with av.open(str(tmp), "w", format="mp4") as container:
            stream = cast(av.VideoStream, container.add_stream(CODEC, rate=fps))
            stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            if CODEC == "libx264":
                stream.options = {"crf": "12", "preset": "veryfast"}  # near-lossless; small frames anyway
            else:
                stream.bit_rate = 4_000_000
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())

    _atomic(path, write)


def _round(values: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in values]


def annotation(scene: Scene, config: ClevrerLiteConfig) -> dict[str, Any]:
    """The scene's annotation in CLEVRER's layout, for the shown frames."""
    r = config.physics.radius
    heights = [centre_height(o.shape, r) for o in scene.objects]
    traj = scene.trajectory
    frames = []
    for f in range(scene.num_frames):
        objects = [
            {
                "object_id": o.object_id,
                "location": _round(np.array([*traj.positions[f, k], heights[k]])),
                "orientation": [0.0, 0.0, round(o.angle, 4)],
                "velocity": _round(np.array([*traj.velocities[f, k], 0.0])),
                "angular_velocity": [0.0, 0.0, 0.0],
                "inside_camera_view": bool(scene.in_view[f, k]),
            }
            for k, o in enumerate(scene.objects)
        ]
        frames.append({"frame_id": f, "objects": objects})
    collisions = [
        {
            "object_ids": [c.i, c.j],
            "frame_id": c.frame,
            "location": _round(np.array([*c.location, r])),
        }
        for c in traj.contacts
        if c.frame < scene.num_frames
    ]
    return {
        "scene_index": scene.index,
        "video_filename": video_path(Path(), scene.index).name,
        "object_property": [
            {"object_id": o.object_id, "color": o.color, "material": o.material, "shape": o.shape}
            for o in scene.objects
        ],
        "motion_trajectory": frames,
        "collision": collisions,
    }


def write_json(path: Path, data: Any) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(data, separators=(",", ":")))

    _atomic(path, write)


def write_masks(path: Path, ids: np.ndarray, scene: Scene, config: ClevrerLiteConfig) -> None:
    traj, r = scene.trajectory, config.physics.radius
    heights = np.array([centre_height(o.shape, r) for o in scene.objects])
    locations = np.concatenate(
        [traj.positions, np.broadcast_to(heights[None, :, None], (*traj.positions.shape[:2], 1))], axis=-1
    )
    collisions = np.array([(c.frame, c.i, c.j) for c in traj.contacts], np.int32).reshape(-1, 3)

    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:  # a file object: savez would add ".npz" to a name
            np.savez_compressed(
                f,
                ids=ids.astype(np.uint8),
                locations=locations.astype(np.float32),
                velocities=traj.velocities.astype(np.float32),
                in_view=scene.in_view,
                collisions=collisions,
            )

    _atomic(path, write)


def read_masks(path: str | Path) -> dict[str, np.ndarray]:
    """A mask file's arrays (see the module docstring); ``allow_pickle`` stays off."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"CLEVRER-lite mask file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"CLEVRER-lite mask file {path} is not readable: {exc}") from None
