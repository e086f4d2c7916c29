"""Real videos listed in CSV files: the ``video-folder`` datamodule (V-JEPA's data format).

facebookresearch/jepa's ``VideoDataset`` reads a CSV without a header, one video per line: a
path and an integer label, separated by a space. This reader takes that format and also commas
(``path,label``); a path may contain spaces (the label is the last field). Relative paths are
read relative to the CSV's folder. Videos are decoded with PyAV.

A clip is ``frames_per_clip`` frames ``frame_step`` apart, resized so that the short side is
``size``, centre-cropped to ``size x size``, and normalised with ImageNet's mean and standard
deviation (as the official transforms). Training clips start at a random frame (seeded by the
sample index); evaluation clips follow the official frozen evaluation: the video is cut into
``num_clips`` equal segments and one clip is read from the start of each, and each clip gives
``num_views`` crops spread along its long side (3: left, centre, right). With more than one,
evaluation samples carry all of them as ``views``.

Samples: ``input`` (3, T, S, S) float32, normalised (the centre crop of the first clip); ``label`` ()
int64; in evaluation with ``num_clips * num_views > 1`` also ``views`` (V, 3, T, S, S), clip-major
(the crops of clip 0 first), and with ``num_clips > 1`` ``segments`` (num_clips, 3, T, S, S), the
centre crop of every clip (what a probe that attends across segments is fitted on).

Splits: ``train_csv``, and ``val_csv`` / ``test_csv`` when given; a missing one is cut from the
training list (``val_fraction``, ``test_fraction`` of it, by a permutation seeded with ``seed``).
The probes of the V-JEPA task are fitted on the training list read as evaluation clips.

Deviations from the official loader: the frames of a clip are exactly ``frame_step`` apart (the
official spaces ``frames_per_clip`` indices evenly over ``frames_per_clip * frame_step`` frames);
a training video's clip start depends on the sample index only, not on the epoch; a video
shorter than one clip is an error (or skipped), never padded with its last frame.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
from torch.utils.data import Dataset

from attnlab.data._registry import register_datamodule
from attnlab.data.datamodule import DataModule, Split
from attnlab.errors import ConfigError, InputError

log = logging.getLogger(__name__)

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)  # ImageNet, as the official transforms
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
LINE = re.compile(r"(?P<path>.+?)[,\s]+(?P<label>[+-]?\d+)\s*")  # the label is the last field


@dataclass(frozen=True)
class Video:
    path: Path
    label: int


@dataclass(frozen=True)
class ClipSpec:
    """What is read from a video: frames, their spacing, the output size, clips and views."""

    frames_per_clip: int
    frame_step: int
    size: int
    num_clips: int = 1
    num_views: int = 1

    @property
    def span(self) -> int:
        """Frames a clip covers, first to last."""
        return (self.frames_per_clip - 1) * self.frame_step + 1


def read_video_list(path: Path) -> list[Video]:
    """The videos of one CSV, with one-line errors for a missing file or a malformed line."""
    if not path.is_file():
        raise InputError(f"video list not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read video list {path}: {exc}") from None
    videos = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = LINE.fullmatch(line.strip())
        if match is None or int(match["label"]) < 0:
            raise InputError(
                f"{path} line {number}: expected 'path label' (space- or comma-separated, "
                f"label an integer >= 0), got {line.strip()!r}"
            )
        file = Path(match["path"].strip())
        videos.append(Video(file if file.is_absolute() else path.parent / file, int(match["label"])))
    if not videos:
        raise InputError(f"video list {path} lists no videos")
    return videos


def reason(exc: Exception) -> str:
    """FFmpeg's words for a decoding error, without its errno and file name."""
    return str(getattr(exc, "strerror", None) or exc)


def frame_count(path: Path) -> int:
    """Frames in the video's first stream (from its header, else by decoding); InputError if unreadable."""
    if not path.is_file():
        raise InputError(f"video not found: {path}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"video {path} has no video stream")
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            return sum(1 for _ in container.decode(stream))
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise InputError(f"video {path} is corrupt or not a video: {reason(exc)}") from None


def check_video(video: Video, spec: ClipSpec) -> int:
    """The video's frame count, or an InputError naming why it cannot give one clip."""
    count = frame_count(video.path)
    if count < spec.span:
        raise InputError(
            f"video {video.path} has {count} frames, fewer than one clip needs ({spec.span}: "
            f"data.frames_per_clip={spec.frames_per_clip} every data.frame_step={spec.frame_step})"
        )
    return count


def clip_starts(count: int, spec: ClipSpec, rng: np.random.Generator | None) -> list[int]:
    """First frame of each clip: one random clip (``rng``, training), or one clip at the start of
    each of ``num_clips`` equal segments (evaluation), moved back where it would run past the end."""
    last = count - spec.span  # the latest possible start
    if rng is not None:
        return [int(rng.integers(0, last + 1))]
    return [min(i * count // spec.num_clips, last) for i in range(spec.num_clips)]


def resized_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """(height, width) with the short side ``size`` and the aspect ratio kept."""
    if height <= width:
        return size, max(size, round(width * size / height))
    return max(size, round(height * size / width)), size


def crop_offsets(long: int, size: int, num_views: int) -> list[int]:
    """Offsets of ``num_views`` crops of ``size`` spread evenly along a side of ``long``; one is centred."""
    if num_views == 1:
        return [(long - size) // 2]
    return [round(i * (long - size) / (num_views - 1)) for i in range(num_views)]


def decode_frames(path: Path, indices: list[int], size: int) -> np.ndarray:
    """Frames ``indices`` (sorted) of the video, short side resized to ``size``: (T, h, w, 3) uint8."""
    wanted = set(indices)
    frames: dict[int, np.ndarray] = {}
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            height, width = resized_shape(stream.height, stream.width, size)
            for index, frame in enumerate(container.decode(stream)):
                if index in wanted:
                    frames[index] = frame.to_ndarray(
                        format="rgb24", width=width, height=height, interpolation="AREA"
                    )
                if index >= indices[-1]:
                    break
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise InputError(f"video {path} is corrupt or not a video: {reason(exc)}") from None
    if len(frames) < len(wanted):
        raise InputError(f"video {path} ended before frame {max(wanted - set(frames))} (truncated?)")
    return np.stack([frames[i] for i in indices])


def to_views(frames: np.ndarray, size: int, num_views: int) -> torch.Tensor:
    """Frames (T, h, w, 3) uint8 -> ``num_views`` normalised crops (V, 3, T, size, size)."""
    _, h, w, _ = frames.shape
    views = []
    for offset in crop_offsets(max(h, w), size, num_views):
        top, left = (offset, (w - size) // 2) if h > w else ((h - size) // 2, offset)
        crop = frames[:, top : top + size, left : left + size].astype(np.float32) / np.float32(255)
        views.append(((crop - MEAN) / STD).transpose(3, 0, 1, 2))  # (T, S, S, 3) -> (3, T, S, S)
    return torch.from_numpy(np.ascontiguousarray(np.stack(views)))


class VideoClips(Dataset[dict[str, torch.Tensor]]):
    """Clips of the listed videos (the module docstring lists the sample keys)."""

    def __init__(
        self, videos: list[Video], counts: list[int], spec: ClipSpec, *, train: bool, seed: int
    ) -> None:
        self.videos, self.counts, self.spec, self.train, self.seed = videos, counts, spec, train, seed

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        video, spec = self.videos[index], self.spec
        rng = np.random.default_rng([self.seed, index]) if self.train else None
        starts = clip_starts(self.counts[index], spec, rng)
        per_clip = [[s + k * spec.frame_step for k in range(spec.frames_per_clip)] for s in starts]
        wanted = sorted({i for clip in per_clip for i in clip})
        decoded = dict(zip(wanted, decode_frames(video.path, wanted, spec.size), strict=True))
        clips = [np.stack([decoded[i] for i in clip]) for clip in per_clip]  # each (T, h, w, 3)
        # the probes are fitted on single clips (the official trains them on one view): the centre
        # crop of the first clip, whatever num_views is
        sample = {"input": to_views(clips[0], spec.size, 1)[0], "label": torch.tensor(video.label)}
        if self.train or len(clips) * spec.num_views == 1:
            return sample
        views = torch.cat([to_views(clip, spec.size, spec.num_views) for clip in clips])
        sample |= {"views": views}  # (clips * views, 3, T, S, S), the views of clip 0 first
        if len(clips) > 1:
            sample |= {"segments": torch.stack([to_views(clip, spec.size, 1)[0] for clip in clips])}
        return sample


def split_off(videos: list[Video], fraction: float, seed: int) -> tuple[list[Video], list[Video]]:
    """(the rest, a ``fraction`` of ``videos`` (at least one when > 0)) by a seeded permutation."""
    take = 0 if fraction == 0 else max(1, round(fraction * len(videos)))
    order = np.random.default_rng(seed).permutation(len(videos))
    picked = set(order[:take].tolist())
    rest = [v for i, v in enumerate(videos) if i not in picked]
    return rest, [v for i, v in enumerate(videos) if i in picked]


@register_datamodule("video-folder")
class VideoFolderData(DataModule):
    """Videos listed in CSVs (``path label`` lines) decoded with PyAV; one ``label`` per video."""

    def __init__(
        self,
        *,
        seed: int,
        train_csv: str,
        val_csv: str | None = None,
        test_csv: str | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        class_names: list[str] | None = None,
        frames_per_clip: int = 16,
        frame_step: int = 4,
        size: int = 224,
        num_clips: int = 1,
        num_views: int = 1,
        skip_broken: bool = False,
        batch_size: int = 32,
        eval_batch_size: int = 32,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
        if min(frames_per_clip, frame_step, size, num_clips, num_views) < 1:
            raise ConfigError(
                "data.frames_per_clip, frame_step, size, num_clips and num_views must be >= 1, got "
                f"{frames_per_clip}, {frame_step}, {size}, {num_clips}, {num_views}"
            )
        if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ConfigError(
                f"data.val_fraction and test_fraction must be in [0, 1) with a sum below 1, "
                f"got {val_fraction}, {test_fraction}"
            )
        self.spec = ClipSpec(frames_per_clip, frame_step, size, num_clips, num_views)
        self.skip_broken = skip_broken
        self.lists = self._lists(train_csv, val_csv, test_csv, val_fraction, test_fraction)
        top = max(v.label for videos in self.lists.values() for v in videos)
        names = tuple(class_names) if class_names else tuple(str(i) for i in range(top + 1))
        if top >= len(names):
            raise InputError(f"a video has label {top}, but data.class_names names only {len(names)} classes")
        self.label_names = {"label": names}
        self._usable: dict[str, tuple[list[Video], list[int]]] = {}

    def _lists(
        self, train: str, val: str | None, test: str | None, val_fraction: float, test_fraction: float
    ) -> dict[str, list[Video]]:
        videos = read_video_list(Path(train))
        lists = {}
        for name, csv, fraction in (("test", test, test_fraction), ("val", val, val_fraction)):
            if csv is not None:
                lists[name] = read_video_list(Path(csv))
                continue
            videos, lists[name] = split_off(videos, fraction, self.seed + len(lists))
            if not lists[name]:
                raise ConfigError(f"data.{name}_csv is not given and data.{name}_fraction is 0")
        if not videos:
            raise InputError(f"{train}: no training videos are left after cutting off val and test")
        return {"train": videos} | lists

    def usable(self, split: str) -> tuple[list[Video], list[int]]:
        """The split's videos that give a clip, and their frame counts; checked once per split."""
        if split not in self._usable:
            videos, counts, problems = [], [], []
            for video in self.lists[split]:
                try:
                    counts.append(check_video(video, self.spec))
                    videos.append(video)
                except InputError as exc:
                    problems.append(str(exc))
            if problems and not self.skip_broken:
                raise InputError(f"{problems[0]}; fix the list or set data.skip_broken true to skip it")
            if problems:
                log.warning(
                    "video-folder %s: skipped %d of %d videos (broken or too short); first: %s",
                    split, len(problems), len(self.lists[split]), problems[0],
                )  # fmt: skip
            if not videos:
                raise InputError(f"video-folder {split}: none of the {len(problems)} videos is usable")
            self._usable[split] = (videos, counts)
        return self._usable[split]

    def skipped(self, split: str) -> int:
        return len(self.lists[split]) - len(self.usable(split)[0])

    def build(self, split: Split) -> VideoClips:
        videos, counts = self.usable(split)
        offset = {"train": 0, "val": 1_000_003, "test": 2_000_029}[split]
        return VideoClips(videos, counts, self.spec, train=split == "train", seed=self.seed + offset)

    def probe_dataset(self) -> VideoClips:
        """The training videos read as evaluation clips (views included), for fitting frozen probes."""
        videos, counts = self.usable("train")
        return VideoClips(videos, counts, self.spec, train=False, seed=self.seed)

    def probe_dataloader(self) -> torch.utils.data.DataLoader[object]:
        return self._loader(self.probe_dataset(), batch_size=self.eval_batch_size)
