"""Multi-object tracking (MOT) metrics of the object-centric representation benchmark.

Paper: Weis et al., "Benchmarking Unsupervised Object Representations for Video Sequences"
(JMLR 2021, arXiv:2006.07034). Reference evaluation: ``ocrb/eval/eval_mot.py`` and
``ocrb/eval/eval_utils.py`` in github.com/ecker-lab/object-centric-representation-benchmark.
This module is an independent implementation of that protocol; fed the benchmark's JSON files
it reproduces the official numbers exactly (tested against ``shared/reference/vimon``).

Protocol, per clip and per evaluated frame (0-based ``start_step`` .. ``stop_step - 1``):

0. Frames: the authors' script scores frames 3..10 (``start_step=2, stop_step=10``) whatever the
   clip's length. Our default (``stop_step=None``) scores frames 3..T, to each clip's end: the same
   on the benchmark's 10-frame clips, more frames on longer ones (the authors' script would fail
   on shorter ones). :data:`AUTHORS_PROTOCOL` stops at frame 10 as they do. Every result says
   which frames it scored (:attr:`MOTMetrics.frames`, e.g. "frames 3-10 of 10").

1. Masks (predicted and true) with ``min_num_pixels`` (5) pixels or fewer are dropped.
2. IoU between every remaining true and predicted mask (two empty masks have IoU 1).
3. With ``exclude_bg``: for each of the frame's ``num_bg`` background masks, which are the last
   true masks, the predictions whose IoU with it exceeds ``bg_iou_threshold`` (0.2) are dropped
   and then the true mask itself.
4. Distance ``1 - IoU``; pairs with distance above ``1 - iou_threshold`` (IoU below 0.5) can
   never be matched. One ``motmetrics.MOTAccumulator`` collects all frames of all clips.
5. Summary: MOTA x 100; MOTP as mean IoU of matches x 100; matches, misses, false positives and
   ID switches as percentages of true object-frames; mostly tracked / mostly detected as the
   percentage of true objects matched (``MATCH`` only) / found (``MATCH`` or ``SWITCH``) in at
   least 80% of the frames in which they are present.

Known deviations from the reference code (none affects well-formed inputs):
- malformed inputs (RLE runs beyond the image, missing keys, duplicate ids) raise
  :class:`~attnlab.errors.InputError` instead of being silently truncated or crashing;
- a frame with no true mask left skips the background exclusion instead of raising IndexError;
- with no true objects at all (no true mask left in any scored frame), every percentage is NaN.
  The reference raises nothing there: its divisions are numpy scalar divisions by zero (with
  RuntimeWarnings), so MOTA is -inf when there is a false positive (motmetrics'
  ``1 - quiet_divide(errors, 0)``), the false-positive rate +inf, the other rates, MOTP and
  mostly tracked/detected NaN; its result file, written by ``pandas.Series.to_json``, stores
  every one of those as ``null``. We return NaN for all of them: a rate over zero objects is
  undefined, and an infinity would swamp a mean over seeds where a NaN shows;
- ``exclude_bg`` with a ground-truth frame of ``num_bg=0`` raises :class:`InputError`; the
  reference excludes nothing there and scores the background as an object.

Like the reference, the background exclusion removes the last ``num_bg`` true masks that
survive step 1; the background is never that small in practice.

Track ids must be unique across clips, since one accumulator spans all of them (the official
annotation files number them that way). The tensor entry points ensure it themselves.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from attnlab.errors import InputError

Clips = list[list["MOTFrame"]]

_SUMMARY_METRICS = [
    "num_frames",
    "mota",
    "motp",
    "num_matches",
    "num_switches",
    "num_false_positives",
    "num_misses",
    "num_objects",
]
# The event types that describe the objects themselves; motmetrics adds bookkeeping rows
# (RAW, TRANSFER, ASCEND, MIGRATE) that the benchmark leaves out of its per-object counts.
_OBJECT_EVENTS = ["MATCH", "SWITCH", "MISS", "FP"]
_MOSTLY = 0.8


@dataclass(frozen=True)
class MOTProtocol:
    """The knobs of the benchmark; the defaults are the published protocol."""

    start_step: int = 2
    stop_step: int | None = None  # None: up to the clip's last frame (10 in the benchmark)
    iou_threshold: float = 0.5
    min_num_pixels: int = 5
    bg_iou_threshold: float = 0.2

    def __post_init__(self) -> None:
        steps = (self.start_step, self.min_num_pixels, 0 if self.stop_step is None else self.stop_step)
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in steps):
            raise InputError("start_step, stop_step and min_num_pixels must be integers")
        if self.start_step < 0:
            raise InputError(f"start_step must be >= 0, got {self.start_step}")
        if self.stop_step is not None and self.stop_step <= self.start_step:
            raise InputError(f"stop_step ({self.stop_step}) must be > start_step ({self.start_step})")
        for name in ("iou_threshold", "bg_iou_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.min_num_pixels < 0:
            raise InputError(f"min_num_pixels must be >= 0, got {self.min_num_pixels}")


BENCHMARK_PROTOCOL = MOTProtocol()
# The authors' script exactly: frames 3..10 of every clip (clips need at least 10 frames).
AUTHORS_PROTOCOL = MOTProtocol(stop_step=10)


@dataclass(frozen=True)
class MOTFrame:
    """The objects of one frame: binary masks (N, H, W), their track ids, and how many of the
    last masks are background (ground truth only)."""

    masks: np.ndarray
    ids: tuple[int, ...]
    num_bg: int = 0


@dataclass(frozen=True)
class MOTMetrics:
    """The benchmark's summary. Names follow the benchmark's result files: ``num_matches``,
    ``num_switches``, ``num_false_positives`` and ``num_misses`` are percentages of
    ``num_objects`` (true object-frames); ``mota``, ``motp`` and ``mostly_*`` are percentages.

    ``first_frame`` and ``last_frame`` (1-based, inclusive) and ``clip_frames`` say which frames
    were scored: frames 3-10 of 10-frame clips in the benchmark. Clips of different lengths
    scored to their ends give the longest clip's ``last_frame`` and ``clip_frames``, and
    :attr:`frames` names the range of each. They are None when not recorded: for no clips, or
    :func:`summarize` of an accumulator without them."""

    num_frames: int
    mota: float
    motp: float
    num_matches: float
    num_switches: float
    num_false_positives: float
    num_misses: float
    num_objects: int
    mostly_tracked: float
    mostly_detected: float
    first_frame: int | None = None
    last_frame: int | None = None
    clip_frames: int | None = None
    frames: str = "frames: not recorded"

    def to_dict(self) -> dict[str, float]:
        """The keys of the benchmark's result file (the frame range is in the other fields)."""
        return {k: v for k, v in asdict(self).items() if k not in _FRAME_FIELDS}


_FRAME_FIELDS = ("first_frame", "last_frame", "clip_frames", "frames")


@dataclass(frozen=True)
class ScoredFrames:
    """The frames a protocol scores in a set of clips, 1-based and inclusive."""

    first: int
    last: int  # of the longest clip
    clip_frames: int  # frames in the longest clip
    description: str  # "frames 3-10 of 10"; one range per clip length when they differ

    @classmethod
    def of(cls, clips: Clips, protocol: MOTProtocol) -> ScoredFrames | None:
        """None for no clips (nothing scored)."""
        if not clips:
            return None
        first = protocol.start_step + 1
        lengths = sorted({len(clip) for clip in clips})
        last = {n: n if protocol.stop_step is None else protocol.stop_step for n in lengths}
        text = ", ".join(f"{first}-{last[n]} of {n}" for n in lengths)
        return cls(first, last[lengths[-1]], lengths[-1], f"frames {text}")


@dataclass(frozen=True)
class FrameDistances:
    """What one frame gives the accumulator: distances (NaN = may not match) and the ids."""

    distances: np.ndarray  # (N_gt, N_pred)
    gt_ids: list[int]
    pred_ids: list[int]


# ----------------------------------------------------------------------------- RLE


def rle_encode(mask: np.ndarray | torch.Tensor) -> str:
    """Run-length encode a binary (H, W) mask as 1-based "start length" pairs, row-major."""
    flat = _as_binary_numpy(mask, "mask", ndim=2).reshape(-1).astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [0]])))  # run starts, then ends
    starts, ends = edges[0::2], edges[1::2]
    return " ".join(f"{s + 1} {e - s}" for s, e in zip(starts.tolist(), ends.tolist(), strict=True))


def rle_decode(rle: str, shape: tuple[int, int]) -> np.ndarray:
    """Decode 1-based "start length" pairs into a bool (H, W) mask; overlapping runs are OR-ed."""
    height, width = _image_size(shape)
    starts, lengths = _parse_runs(rle, height * width)
    # +1 where a run begins and -1 where it ends; the running sum is > 0 inside any run.
    delta = np.zeros(height * width + 1, dtype=np.int64)
    np.add.at(delta, starts, 1)
    np.add.at(delta, starts + lengths, -1)
    return (np.cumsum(delta[:-1]) > 0).reshape(height, width)


def _parse_runs(rle: str, num_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(rle, str):
        raise InputError(f"an RLE mask must be a string, got {type(rle).__name__}")
    tokens = rle.split()
    if len(tokens) % 2:
        raise InputError(f"an RLE mask needs start/length pairs, got {len(tokens)} numbers")
    try:
        values = np.array([int(t) for t in tokens], dtype=np.int64).reshape(-1, 2)
    except ValueError:
        raise InputError(f"an RLE mask must contain integers only, got '{rle[:40]}'") from None
    starts, lengths = values[:, 0] - 1, values[:, 1]
    if (starts < 0).any() or (lengths < 0).any():
        raise InputError("RLE starts must be >= 1 and lengths >= 0")
    if len(starts) and (starts + lengths).max() > num_pixels:
        raise InputError(
            f"RLE run ends at pixel {(starts + lengths).max()}, beyond the image's {num_pixels} pixels"
        )
    return starts, lengths


# ----------------------------------------------------------------------------- one frame


def mask_iou(gt_masks: np.ndarray, pred_masks: np.ndarray) -> np.ndarray:
    """IoU (N_gt, N_pred) between two stacks of binary masks (N, H, W); two empty masks give 1."""
    gt, pred = _flat(gt_masks).astype(np.float64), _flat(pred_masks).astype(np.float64)
    inter = gt @ pred.T  # integer counts, exact in float64
    union = gt.sum(1)[:, None] + pred.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.ones_like(inter), where=union > 0)


def frame_distances(
    gt: MOTFrame, pred: MOTFrame, *, exclude_bg: bool = False, protocol: MOTProtocol = BENCHMARK_PROTOCOL
) -> FrameDistances:
    """The distance matrix and ids of one frame, after dropping small and background masks."""
    if gt.masks.shape[1:] != pred.masks.shape[1:]:
        raise InputError(
            f"ground-truth masks {gt.masks.shape[1:]} and predicted masks "
            f"{pred.masks.shape[1:]} differ in image size"
        )
    gt_masks, gt_ids = _drop_small(gt, protocol.min_num_pixels)
    pred_masks, pred_ids = _drop_small(pred, protocol.min_num_pixels)
    iou = mask_iou(gt_masks, pred_masks)
    if exclude_bg:
        iou, gt_ids, pred_ids = _exclude_background(iou, gt_ids, pred_ids, gt.num_bg, protocol)
    distances = 1.0 - iou
    distances[distances > 1.0 - protocol.iou_threshold] = np.nan
    return FrameDistances(distances, gt_ids, pred_ids)


def _flat(masks: np.ndarray) -> np.ndarray:
    # Explicit sizes: reshape(0, -1) is ambiguous for a frame without masks.
    return masks.reshape(masks.shape[0], masks.shape[-2] * masks.shape[-1])


def _drop_small(frame: MOTFrame, min_num_pixels: int) -> tuple[np.ndarray, list[int]]:
    keep = _flat(frame.masks).sum(1) > min_num_pixels
    return frame.masks[keep], [i for i, k in zip(frame.ids, keep.tolist(), strict=True) if k]


def _exclude_background(
    iou: np.ndarray, gt_ids: list[int], pred_ids: list[int], num_bg: int, protocol: MOTProtocol
) -> tuple[np.ndarray, list[int], list[int]]:
    # The background is the last true mask; predictions that cover much of it are background
    # slots, which the benchmark neither rewards nor punishes.
    for _ in range(num_bg):
        if not gt_ids:
            break
        keep = iou[-1] <= protocol.bg_iou_threshold
        iou = iou[:-1][:, keep]
        pred_ids = [p for p, k in zip(pred_ids, keep.tolist(), strict=True) if k]
        gt_ids = gt_ids[:-1]
    return iou, gt_ids, pred_ids


# ----------------------------------------------------------------------------- accumulate


def _motmetrics() -> ModuleType:
    try:
        import motmetrics
    except ImportError:
        raise ImportError("MOT metrics need py-motmetrics: pip install 'attnlab[video]'") from None
    return motmetrics


def accumulate(
    gt_clips: Clips,
    pred_clips: Clips,
    *,
    exclude_bg: bool = False,
    protocol: MOTProtocol = BENCHMARK_PROTOCOL,
) -> Any:
    """Feed every evaluated frame of every clip into one ``motmetrics.MOTAccumulator``."""
    _check_clips(gt_clips, pred_clips, exclude_bg, protocol)
    acc = _motmetrics().MOTAccumulator()
    frame_id = 0  # one count across clips, as the reference
    for gt_clip, pred_clip in zip(gt_clips, pred_clips, strict=True):
        stop = len(gt_clip) if protocol.stop_step is None else protocol.stop_step
        for t in range(protocol.start_step, stop):
            frame = frame_distances(gt_clip[t], pred_clip[t], exclude_bg=exclude_bg, protocol=protocol)
            acc.update(frame.gt_ids, frame.pred_ids, frame.distances, frameid=frame_id)
            frame_id += 1
    return acc


def _check_clips(gt_clips: Clips, pred_clips: Clips, exclude_bg: bool, protocol: MOTProtocol) -> None:
    if len(gt_clips) != len(pred_clips):
        raise InputError(f"{len(gt_clips)} ground-truth clips but {len(pred_clips)} predicted clips")
    for c, (gt_clip, pred_clip) in enumerate(zip(gt_clips, pred_clips, strict=True)):
        if len(gt_clip) != len(pred_clip):
            raise InputError(f"clip {c}: {len(gt_clip)} ground-truth frames but {len(pred_clip)} predicted")
        stop = len(gt_clip) if protocol.stop_step is None else protocol.stop_step
        if stop > len(gt_clip) or protocol.start_step >= stop:
            raise InputError(
                f"clip {c} has {len(gt_clip)} frames, too few for start_step="
                f"{protocol.start_step}, stop_step={protocol.stop_step}"
            )
        if exclude_bg and any(f.num_bg < 1 for f in gt_clip):
            raise InputError(f"clip {c}: exclude_bg needs num_bg >= 1 in every ground-truth frame")


def summarize(acc: Any, frames: ScoredFrames | None = None) -> MOTMetrics:
    """The benchmark's summary of an accumulator; ``frames`` (:meth:`ScoredFrames.of`) records
    which frames it holds."""
    mm = _motmetrics()
    row = mm.metrics.create().compute(acc, metrics=_SUMMARY_METRICS, name="acc").loc["acc"]
    n = int(row["num_objects"])
    tracked, detected = _mostly_tracked_detected(acc.mot_events)
    return MOTMetrics(
        num_frames=int(row["num_frames"]),
        mota=float(row["mota"]) * 100 if n else float("nan"),  # motmetrics gives -inf or NaN
        motp=(1.0 - float(row["motp"])) * 100,  # motmetrics' MOTP is a mean distance
        num_matches=_percent(int(row["num_matches"]), n),
        num_switches=_percent(int(row["num_switches"]), n),
        num_false_positives=_percent(int(row["num_false_positives"]), n),
        num_misses=_percent(int(row["num_misses"]), n),
        num_objects=n,
        mostly_tracked=tracked,
        mostly_detected=detected,
        **(_frame_fields(frames) if frames is not None else {}),
    )


def _frame_fields(frames: ScoredFrames) -> dict[str, Any]:
    return {
        "first_frame": frames.first,
        "last_frame": frames.last,
        "clip_frames": frames.clip_frames,
        "frames": frames.description,
    }


def _percent(count: int, total: int) -> float:
    # (count / total) * 100, in this order, rounds exactly as the benchmark does.
    return count / total * 100 if total else float("nan")


def _mostly_tracked_detected(events: Any) -> tuple[float, float]:
    events = events[events["Type"].isin(_OBJECT_EVENTS)]
    frames_present = events["OId"].value_counts()  # false positives have no OId and drop out
    if len(frames_present) == 0:
        return float("nan"), float("nan")
    matched = events[events["Type"] == "MATCH"]["OId"].value_counts()
    found = events[events["Type"] != "MISS"]["OId"].value_counts()
    shares = []
    for counts in (matched, found):
        ratio = counts.reindex(frames_present.index, fill_value=0) / frames_present
        shares.append(_percent(int((ratio >= _MOSTLY).sum()), len(frames_present)))
    return shares[0], shares[1]


def mot_metrics(
    gt_clips: Clips,
    pred_clips: Clips,
    *,
    exclude_bg: bool = False,
    protocol: MOTProtocol = BENCHMARK_PROTOCOL,
) -> MOTMetrics:
    """MOT metrics of predicted tracks against true tracks, both as clips of :class:`MOTFrame`."""
    acc = accumulate(gt_clips, pred_clips, exclude_bg=exclude_bg, protocol=protocol)
    return summarize(acc, ScoredFrames.of(gt_clips, protocol))


# ----------------------------------------------------------------------------- JSON files


def load_mot_json(path: str | Path, image_size: int | tuple[int, int] = 64) -> Clips:
    """Read the benchmark's annotation format: a list of clips, each a list of frames
    ``{"masks": [RLE, ...], "ids": [int, ...], "num_bg": int (ground truth only)}``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"MOT annotation file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path} is not valid JSON: {err}") from None
    shape = _image_size(image_size)
    if not isinstance(data, list) or not all(isinstance(clip, list) for clip in data):
        raise InputError(f"{path}: expected a list of clips, each a list of frames")
    return [
        [_frame_from_json(f, shape, f"{path}: clip {c}, frame {t}") for t, f in enumerate(clip)]
        for c, clip in enumerate(data)
    ]


def _frame_from_json(entry: Any, shape: tuple[int, int], where: str) -> MOTFrame:
    if not isinstance(entry, dict) or "masks" not in entry or "ids" not in entry:
        raise InputError(f"{where}: a frame must be a dict with keys 'masks' and 'ids'")
    masks, ids = entry["masks"], entry["ids"]
    if not isinstance(masks, list) or not isinstance(ids, list) or len(masks) != len(ids):
        raise InputError(f"{where}: 'masks' and 'ids' must be lists of the same length")
    # Prediction files carry no num_bg; exclude_bg later insists on num_bg >= 1 for the truth.
    num_bg = entry.get("num_bg", 0)
    try:
        decoded = np.stack([rle_decode(m, shape) for m in masks]) if masks else np.zeros((0, *shape), bool)
        return _make_frame(decoded, ids, num_bg)
    except InputError as err:
        raise InputError(f"{where}: {err}") from None


def _make_frame(masks: np.ndarray, ids: list[Any], num_bg: Any) -> MOTFrame:
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise InputError(f"track ids must be integers, got {ids}")
    if len(set(ids)) != len(ids):
        raise InputError(f"track ids repeat within a frame: {ids}")
    if not isinstance(num_bg, int) or isinstance(num_bg, bool) or not 0 <= num_bg <= len(ids):
        raise InputError(f"num_bg must be an integer in [0, {len(ids)}], got {num_bg!r}")
    return MOTFrame(masks, tuple(ids), num_bg)


def mot_metrics_from_json(
    gt_path: str | Path,
    pred_path: str | Path,
    *,
    image_size: int | tuple[int, int] = 64,
    exclude_bg: bool = False,
    protocol: MOTProtocol = BENCHMARK_PROTOCOL,
) -> MOTMetrics:
    """MOT metrics from the benchmark's ground-truth and prediction files."""
    gt_clips = load_mot_json(gt_path, image_size)
    pred_clips = load_mot_json(pred_path, image_size)
    return mot_metrics(gt_clips, pred_clips, exclude_bg=exclude_bg, protocol=protocol)


def clips_to_json(clips: Clips, *, with_num_bg: bool = False) -> list[list[dict[str, Any]]]:
    """The benchmark's JSON structure (``json.dump`` it) for clips of frames."""
    return [[_frame_to_json(frame, with_num_bg) for frame in clip] for clip in clips]


def _frame_to_json(frame: MOTFrame, with_num_bg: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"masks": [rle_encode(m) for m in frame.masks], "ids": list(frame.ids)}
    if with_num_bg:
        entry["num_bg"] = frame.num_bg
    return entry


# ----------------------------------------------------------------------------- tensors


def binarize_slot_masks(masks: torch.Tensor) -> torch.Tensor:
    """Hard slot masks (..., K, H, W) as bool: soft (floating) masks become the one-hot argmax
    over slots, as the benchmark's annotation scripts do; bool masks are kept as they are."""
    if masks.dtype == torch.bool:
        return masks
    if not masks.is_floating_point():
        raise InputError(f"slot masks must be floating (soft) or bool (hard), got {masks.dtype}")
    if not torch.isfinite(torch.stack([masks.amax(), masks.amin()])).all():  # NaN propagates
        raise InputError("slot masks contain NaN or inf")
    # max(dim).indices picks the first slot on ties, as the reference's argmax; it is faster.
    winner = masks.max(dim=-3, keepdim=True).indices
    slots = torch.arange(masks.shape[-3], device=masks.device).view(-1, 1, 1)
    return winner == slots


def pred_clips_from_masks(pred_masks: torch.Tensor, *, id_offset: int = 0) -> Clips:
    """Predicted tracks from slot masks (B, T, K, H, W): slot k of clip b is track
    ``id_offset + b * K + k``; slots with an empty mask in a frame are skipped."""
    _check_ndim(pred_masks, "pred_masks", "(B, T, K, H, W)")
    hard = binarize_slot_masks(pred_masks).cpu().numpy()
    num_slots = hard.shape[2]
    return [
        [_nonempty_slots(hard[b, t], id_offset + b * num_slots) for t in range(hard.shape[1])]
        for b in range(hard.shape[0])
    ]


def _nonempty_slots(masks: np.ndarray, first_id: int) -> MOTFrame:
    present = _flat(masks).any(1)
    return MOTFrame(masks[present], tuple(first_id + k for k in np.flatnonzero(present).tolist()))


def gt_clips_from_masks(gt_masks: torch.Tensor, gt_ids: torch.Tensor, *, num_bg: int = 0) -> Clips:
    """True tracks from instance masks (B, T, N, H, W) and track ids (B, T, N).

    An id below 0 marks an unused entry (padding). Ids are per clip: the same id in two clips
    is two objects. The background masks are the last ``num_bg`` used entries of each frame.
    """
    _check_ndim(gt_masks, "gt_masks", "(B, T, N, H, W)")
    expected = tuple(gt_masks.shape[:3])
    if (
        not isinstance(gt_ids, torch.Tensor)
        or tuple(gt_ids.shape) != expected
        or gt_ids.is_floating_point()
        or gt_ids.dtype == torch.bool
    ):
        got = (
            f"{gt_ids.dtype} {tuple(gt_ids.shape)}"
            if isinstance(gt_ids, torch.Tensor)
            else type(gt_ids).__name__
        )
        raise InputError(f"gt_ids must be an integer tensor of shape {expected}, got {got}")
    masks = _as_binary_numpy(gt_masks, "gt_masks", ndim=5)
    ids = gt_ids.cpu().numpy()
    stride = int(ids.max(initial=-1)) + 1  # makes ids unique across clips
    return [
        [
            _used_entries(masks[b, t], ids[b, t], b * stride, num_bg, f"clip {b}, frame {t}")
            for t in range(masks.shape[1])
        ]
        for b in range(masks.shape[0])
    ]


def _used_entries(masks: np.ndarray, ids: np.ndarray, offset: int, num_bg: int, where: str) -> MOTFrame:
    used = ids >= 0
    try:
        return _make_frame(masks[used], [offset + int(i) for i in ids[used]], num_bg)
    except InputError as err:
        raise InputError(f"gt {where}: {err}") from None


def mot_metrics_from_tensors(
    pred_masks: torch.Tensor,
    gt_masks: torch.Tensor,
    gt_ids: torch.Tensor,
    *,
    num_bg: int = 0,
    exclude_bg: bool = False,
    protocol: MOTProtocol = BENCHMARK_PROTOCOL,
) -> MOTMetrics:
    """MOT metrics of slot masks (B, T, K, H, W), soft or bool, against instance masks
    (B, T, N, H, W) with track ids (B, T, N); see :func:`gt_clips_from_masks`."""
    _check_ndim(pred_masks, "pred_masks", "(B, T, K, H, W)")
    _check_ndim(gt_masks, "gt_masks", "(B, T, N, H, W)")
    if pred_masks.shape[:2] != gt_masks.shape[:2] or pred_masks.shape[3:] != gt_masks.shape[3:]:
        raise InputError(
            f"pred_masks {tuple(pred_masks.shape)} and gt_masks {tuple(gt_masks.shape)} "
            "must agree in B, T, H and W"
        )
    gt_clips = gt_clips_from_masks(gt_masks, gt_ids, num_bg=num_bg)
    return mot_metrics(gt_clips, pred_clips_from_masks(pred_masks), exclude_bg=exclude_bg, protocol=protocol)


def slot_mot_metrics(
    slot_ids: torch.Tensor, gt_masks: torch.Tensor, gt_ids: torch.Tensor, *, num_slots: int
) -> MOTMetrics:
    """MOT metrics of a slot model's argmax partitions, as the ViMON benchmark scores them with the
    background excluded: ``slot_ids`` (B, T, H, W) the argmax slot of each pixel (slot k is track k
    in every frame), ``gt_masks`` (B, T, 1 + N, H, W) bool with the background first, ``gt_ids``
    (B, N) the objects' track ids, 0 where there is no object."""
    pred = F.one_hot(slot_ids.long(), num_slots).permute(0, 1, 4, 2, 3).bool()  # (B, T, K, H, W)
    objects_then_bg = torch.cat([gt_masks[:, :, 1:], gt_masks[:, :, :1]], dim=2)  # num_bg masks come last
    track = torch.where(gt_ids > 0, gt_ids, torch.full_like(gt_ids, -1))  # (B, N); -1 = padding
    ids = torch.cat([track, torch.zeros_like(track[:, :1])], dim=1)  # (B, 1 + N), background id 0
    ids = ids[:, None].expand(-1, gt_masks.shape[1], -1)  # (B, T, 1 + N)
    return mot_metrics_from_tensors(pred, objects_then_bg, ids, num_bg=1, exclude_bg=True)


# ----------------------------------------------------------------------------- validation


def _check_ndim(tensor: Any, name: str, layout: str) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor {layout}, got {type(tensor).__name__}")
    if tensor.ndim != 5:
        hint = "; squeeze the channel dimension" if tensor.ndim == 6 and tensor.shape[3] == 1 else ""
        raise InputError(f"{name} must have shape {layout}, got {tuple(tensor.shape)}{hint}")


def _as_binary_numpy(mask: np.ndarray | torch.Tensor, name: str, ndim: int) -> np.ndarray:
    array = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if array.ndim != ndim:
        raise InputError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    if array.dtype != np.bool_ and not np.isin(array, (0, 1)).all():
        raise InputError(f"{name} must be binary (bool or 0/1 values)")
    return array.astype(bool)


def _image_size(size: int | tuple[int, int]) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(s, int) and s > 0 for s in pair):
        raise InputError(f"image size must be a positive int or (height, width), got {size!r}")
    return pair[0], pair[1]
