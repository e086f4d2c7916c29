"""Generate videos in memory or a whole CLEVRER-lite dataset on disk.

A dataset is made in one parallel pass and one sequential one: workers simulate,
render and write each video (mp4, annotation, masks) and send back its question
candidates; the parent then picks every video's questions in index order
(``balance.py``) and writes ``questions.json``. Everything is a function of the
config and seed, whatever the number of workers.

Re-running into the same folder resumes: a video whose annotation exists (it is
written last, atomically) is not rendered again, only re-simulated for its
questions. A finished folder (its question file written for as many videos) is
left alone; asking it for more videos adds them (the questions of the first ones
do not change: they are picked in index order). A folder made with another config
or seed, or holding more videos than asked for, is refused.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from attnlab.data.clevrer_lite.balance import Balancer
from attnlab.data.clevrer_lite.camera import CameraConfig
from attnlab.data.clevrer_lite.config import ClevrerLiteConfig
from attnlab.data.clevrer_lite.events import scene_events
from attnlab.data.clevrer_lite.intersect import SHAPE_CODES
from attnlab.data.clevrer_lite.questions import Candidate, question_candidates
from attnlab.data.clevrer_lite.render import PALETTE, Looks, RenderConfig, Renderer
from attnlab.data.clevrer_lite.scene import Scene, camera_for, make_scene
from attnlab.data.clevrer_lite.writer import (
    CONFIG_FILE,
    QUESTION_FILE,
    annotation,
    annotation_path,
    mask_path,
    video_path,
    write_json,
    write_masks,
    write_video,
)
from attnlab.errors import ConfigError, InputError

FORMAT_VERSION = 1
_QUESTION_STREAM = 0x9E57  # the scene's question sampling, apart from its physics


@dataclass(frozen=True)
class Video:
    scene: Scene
    frames: np.ndarray  # (T, H, W, 3) uint8, the shown frames
    ids: np.ndarray  # (T, H, W) uint8, 0 ground, k + 1 object k
    candidates: list[Candidate]


@dataclass(frozen=True)
class DatasetSummary:
    out_dir: Path
    num_videos: int
    num_questions: dict[str, int]  # per question type
    seconds: float


@functools.lru_cache(maxsize=8)
def _renderer(render: RenderConfig, camera: CameraConfig, height: int, width: int, radius: float) -> Renderer:
    return Renderer(render, camera_for(camera, height, width), radius)


def looks(scene: Scene) -> Looks:
    return Looks(
        shapes=np.array([SHAPE_CODES[o.shape] for o in scene.objects]),
        albedo=np.array([PALETTE[o.color] for o in scene.objects], dtype=np.float64) / 255,
        metal=np.array([o.material == "metal" for o in scene.objects]),
        angles=np.array([o.angle for o in scene.objects]),
    )


def render_scene(config: ClevrerLiteConfig, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """The shown frames (T, H, W, 3) uint8 and id maps (T, H, W) uint8 of ``scene``."""
    c = config
    renderer = _renderer(c.render, c.camera, c.height, c.width, c.physics.radius)
    t = scene.num_frames
    return renderer.render(looks(scene), scene.trajectory.positions[:t], scene.trajectory.active[:t])


def scene_candidates(config: ClevrerLiteConfig, scene: Scene, seed: int) -> list[Candidate]:
    rng = np.random.default_rng([seed % 2**63, scene.index, _QUESTION_STREAM])
    return question_candidates(scene, scene_events(scene), config, rng)


def generate_video(config: ClevrerLiteConfig, seed: int, index: int) -> Video:
    """Video ``index`` of the dataset with ``seed``, in memory (no questions picked yet)."""
    scene = make_scene(config, seed, index)
    frames, ids = render_scene(config, scene)
    return Video(scene, frames, ids, scene_candidates(config, scene, seed))


# ---------------------------------------------------------------- datasets

_JOB: dict[str, Any] = {}  # the worker's config, seed and folder, set once per process


def _init_worker(config: ClevrerLiteConfig, seed: int, root: Path) -> None:
    _JOB.update(config=config, seed=seed, root=root)


def _make(index: int) -> tuple[int, list[Candidate]]:
    """Write video ``index`` unless it exists; return its question candidates."""
    config, seed, root = _JOB["config"], _JOB["seed"], _JOB["root"]
    scene = make_scene(config, seed, index)
    if not annotation_path(root, index).is_file():
        frames, ids = render_scene(config, scene)
        write_video(video_path(root, index), frames, config.fps)
        write_masks(mask_path(root, index), ids, scene, config)
        write_json(annotation_path(root, index), annotation(scene, config))  # last: marks the video done
    return index, scene_candidates(config, scene, seed)


def _meta(config: ClevrerLiteConfig, seed: int) -> dict[str, Any]:
    meta = {
        "generator": "clevrer-lite",
        "version": FORMAT_VERSION,
        "seed": seed,
        "config": dataclasses.asdict(config),
    }
    return json.loads(json.dumps(meta))  # tuples become lists, as they read back


def _claim(root: Path, meta: dict[str, Any], num_videos: int) -> bool:
    """Check ``root`` against this job; True if it already holds the finished dataset."""
    path = root / CONFIG_FILE
    if path.is_file():
        try:
            found = json.loads(path.read_text())
        except ValueError as exc:
            raise InputError(f"CLEVRER-lite folder {root} has an unreadable {CONFIG_FILE}: {exc}") from None
        if {k: found.get(k) for k in meta} != meta:
            raise InputError(
                f"CLEVRER-lite folder {root} was generated with another config or seed; choose a new out_dir"
            )
        if found.get("num_videos", 0) > num_videos:
            raise InputError(
                f"CLEVRER-lite folder {root} was made for {found['num_videos']} videos; "
                "ask for at least as many or choose a new out_dir"
            )
        if found.get("num_videos") == num_videos and (root / QUESTION_FILE).is_file():
            return True
    elif root.is_dir() and any(root.iterdir()):
        raise InputError(
            f"CLEVRER-lite out_dir {root} is not empty and holds no {CONFIG_FILE}; choose a new out_dir"
        )
    write_json(path, meta | {"num_videos": num_videos, "finished": False})
    return False


def _pool(workers: int, config: ClevrerLiteConfig, seed: int, root: Path) -> Any:
    # fork where there is fork: the parent has imported everything already
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    return context.Pool(workers, initializer=_init_worker, initargs=(config, seed, root))


def _candidates(
    config: ClevrerLiteConfig, seed: int, root: Path, num_videos: int, workers: int, progress: bool
) -> list[list[Candidate]]:
    found: list[list[Candidate]] = [[] for _ in range(num_videos)]
    columns = (TextColumn("CLEVRER-lite"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    if workers == 1:
        _init_worker(config, seed, root)
        with Progress(*columns, disable=not progress) as bar:
            for index in bar.track(range(num_videos)):
                found[index] = _make(index)[1]
        return found
    with _pool(workers, config, seed, root) as pool, Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("videos", total=num_videos)
        chunk = max(1, min(16, num_videos // (8 * workers)))
        for index, candidates in pool.imap_unordered(_make, range(num_videos), chunksize=chunk):
            found[index] = candidates
            bar.advance(task)
    return found


def generate_dataset(
    config: ClevrerLiteConfig,
    out_dir: str | Path,
    num_videos: int,
    seed: int,
    workers: int = 1,
    *,
    progress: bool = True,
) -> DatasetSummary:
    """Write ``num_videos`` videos with annotations, masks and questions to ``out_dir``
    (layout in :mod:`attnlab.data.clevrer_lite.writer`), using ``workers`` processes."""
    if not isinstance(config, ClevrerLiteConfig):
        raise ConfigError(f"generate_dataset needs a ClevrerLiteConfig, got {type(config).__name__}")
    if num_videos < 1 or workers < 1 or num_videos > 99_999:
        raise ConfigError(
            f"generate_dataset needs 1 <= num_videos <= 99999 and workers >= 1, got {num_videos}, {workers}"
        )
    start = time.perf_counter()
    root = Path(out_dir)
    meta = _meta(config, seed)
    if not _claim(root, meta, num_videos):
        found = _candidates(config, seed, root, num_videos, min(workers, num_videos), progress)
        balancer = Balancer(config.questions, seed)
        entries = [
            {
                "scene_index": i,
                "video_filename": video_path(root, i).name,
                "questions": balancer.pick(found[i]),
            }
            for i in range(num_videos)
        ]
        write_json(root / QUESTION_FILE, entries)
        write_json(root / CONFIG_FILE, meta | {"num_videos": num_videos, "finished": True})
    entries = json.loads((root / QUESTION_FILE).read_text())
    counts = Counter(q["question_type"] for e in entries for q in e["questions"])
    return DatasetSummary(root, num_videos, dict(counts), time.perf_counter() - start)
