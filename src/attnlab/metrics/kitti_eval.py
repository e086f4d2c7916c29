"""KITTI object detection evaluation: AP for 2-D box, BEV and 3-D, and AOS; 11 and 40 points.

Follows the official Python evaluation (traveller59/kitti-object-eval-python, with the 40-point
AP of OpenPCDet's ``kitti_object_eval_python``) rule for rule, so that its tables come out
identical (``tests/metrics/test_kitti_eval.py`` checks them against the reference in
``../shared/reference/kitti_eval``):

- Difficulty ``d`` (0 easy, 1 moderate, 2 hard): a ground-truth box is ignored when it is more
  occluded than ``(0, 1, 2)[d]``, more truncated than ``(0.15, 0.3, 0.5)[d]`` or at most
  ``(40, 25, 25)[d]`` pixels high; a detection is ignored when under that height (strict ``<``).
- Neighbouring classes: a Van is an ignored ground truth for Car, a Person_sitting for
  Pedestrian (a detection on them is neither TP nor FP); other classes take no part.
- Matching, per ground truth in file order over the detections not yet taken with IoU strictly
  above the threshold: the highest score when collecting score thresholds; the largest IoU,
  preferring counted detections to ignored ones, when counting TP/FP at a threshold.
- In the 2-D metric only, unmatched detections that a DontCare region covers (intersection over
  the detection's area above the threshold) are not false positives.
- 41 score thresholds from the scores of the true positives (``score_thresholds``), precision
  made monotone from the right; AP11 is the mean at indices 0, 4, ..., 40, AP40 at 1..40.

What differs is the execution, not the rules: the greedy matching runs once per ground-truth
index over every frame and every score threshold at once (arrays padded to the largest frame),
and rotated IoU is exact float64 geometry (``rotated_iou``) where the official is float32.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from attnlab.errors import InputError
from attnlab.metrics.kitti_objects import KittiObjects
from attnlab.metrics.rotated_iou import bev_iou, box2d_iou, box3d_iou

METRICS = ("bbox", "bev", "3d")
DIFFICULTIES = ("easy", "moderate", "hard")
MIN_HEIGHT = (40.0, 25.0, 25.0)
MAX_OCCLUSION = (0, 1, 2)
MAX_TRUNCATION = (0.15, 0.3, 0.5)
NUM_SAMPLE_POINTS = 41
# Per class: (strict, loose) IoU thresholds for (bbox, bev, 3d), as get_official_eval_result.
MIN_OVERLAPS = {
    "Car": ((0.7, 0.7, 0.7), (0.7, 0.5, 0.5)),
    "Pedestrian": ((0.5, 0.5, 0.5), (0.5, 0.25, 0.25)),
    "Cyclist": ((0.5, 0.5, 0.5), (0.5, 0.25, 0.25)),
    "Van": ((0.7, 0.7, 0.7), (0.7, 0.5, 0.5)),
    "Person_sitting": ((0.5, 0.5, 0.5), (0.5, 0.25, 0.25)),
    "Truck": ((0.7, 0.7, 0.7), (0.5, 0.5, 0.5)),
}
# A ground truth of the key class is an ignored (not a missed) object for the value class.
_NEIGHBOURS = {"van": "car", "person_sitting": "pedestrian"}


@dataclass
class CleanFrame:
    """One frame's flags for one class and difficulty: 0 counted, 1 ignored, -1 another class."""

    ignored_gt: np.ndarray  # (G,) int
    ignored_dt: np.ndarray  # (D,) int
    dontcare: np.ndarray  # (C, 4) the frame's DontCare boxes


def clean_frame(gt: KittiObjects, dt: KittiObjects, cls: str, difficulty: int) -> CleanFrame:
    """The official ``clean_data``: which boxes count for ``cls`` at ``difficulty``."""
    target = cls.lower()
    gt_names = np.char.lower(gt.name.astype(str))
    height = np.abs(gt.bbox[:, 3] - gt.bbox[:, 1])
    same = gt_names == target
    neighbour = np.array([_NEIGHBOURS.get(n) == target for n in gt_names], dtype=bool)
    too_hard = (
        (gt.occluded > MAX_OCCLUSION[difficulty])
        | (gt.truncated > MAX_TRUNCATION[difficulty])
        | (height <= MIN_HEIGHT[difficulty])
    )
    ignored_gt = np.where(same & ~too_hard, 0, np.where(neighbour | (same & too_hard), 1, -1))
    dt_height = np.abs(dt.bbox[:, 3] - dt.bbox[:, 1])
    dt_same = np.char.lower(dt.name.astype(str)) == target
    ignored_dt = np.where(dt_height < MIN_HEIGHT[difficulty], 1, np.where(dt_same, 0, -1))
    return CleanFrame(
        ignored_gt=ignored_gt.astype(np.int64),
        ignored_dt=ignored_dt.astype(np.int64),
        dontcare=gt.bbox[gt.name == "DontCare"].reshape(-1, 4),
    )


def frame_overlaps(gt: KittiObjects, dt: KittiObjects, metric: str) -> np.ndarray:
    """(D, G) IoU of every detection with every ground-truth line (DontCare included)."""
    if metric == "bbox":
        return box2d_iou(dt.bbox, gt.bbox)
    if metric == "bev":
        return bev_iou(dt.boxes_bev(), gt.boxes_bev())
    if metric == "3d":
        return box3d_iou(dt.boxes_camera(), gt.boxes_camera())
    raise InputError(f"unknown KITTI metric '{metric}'; valid: {', '.join(METRICS)}")


def score_thresholds(scores: np.ndarray, num_gt: int) -> np.ndarray:
    """The official ``get_thresholds``: scores at which recall passes 0, 1/40, 2/40, ...

    With fewer true positives than sample points every score is one threshold, which is why
    an index of the PR curve is not a recall position for small sets.
    """
    scores = np.sort(scores)[::-1]
    chosen = []
    current = 0.0
    for i, score in enumerate(scores):
        left = (i + 1) / num_gt
        right = (i + 2) / num_gt if i < len(scores) - 1 else left
        if right - current < current - left and i < len(scores) - 1:
            continue
        chosen.append(score)
        current += 1.0 / (NUM_SAMPLE_POINTS - 1.0)
    return np.asarray(chosen, dtype=np.float64)


@dataclass
class _Batch:
    """Every frame of one class and difficulty, padded: F frames, D detections, G ground truths."""

    overlaps: np.ndarray  # (F, D, G) IoU, 0 for padding
    ignored_gt: np.ndarray  # (F, G) int, -1 for padding
    ignored_dt: np.ndarray  # (F, D) int, -1 for padding
    scores: np.ndarray  # (F, D)
    gt_alpha: np.ndarray  # (F, G)
    dt_alpha: np.ndarray  # (F, D)
    dontcare_cover: np.ndarray  # (F, D, C) DontCare area share of each detection's box
    num_valid_gt: int


def _pad(rows: list[np.ndarray], width: int, fill: float) -> np.ndarray:
    out = np.full((len(rows), width), fill, dtype=np.float64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _padded_overlaps(gts: list[KittiObjects], dts: list[KittiObjects], metric: str) -> np.ndarray:
    """(F, D, G) IoU of every frame, zero-padded to the largest frame."""
    num_d = max([len(d) for d in dts] + [1])
    num_g = max([len(g) for g in gts] + [1])
    out = np.zeros((len(gts), num_d, num_g))
    for f, (g, d) in enumerate(zip(gts, dts, strict=True)):
        out[f, : len(d), : len(g)] = frame_overlaps(g, d, metric)
    return out


def _dontcare_cover(gts: list[KittiObjects], dts: list[KittiObjects]) -> np.ndarray:
    """(F, D, C) share of each detection's 2-D box inside each DontCare region (0 for padding)."""
    dontcare = [g.bbox[g.name == "DontCare"].reshape(-1, 4) for g in gts]
    num_d = max([len(d) for d in dts] + [1])
    num_c = max([len(c) for c in dontcare] + [1])
    out = np.zeros((len(gts), num_d, num_c))
    for f, (c, d) in enumerate(zip(dontcare, dts, strict=True)):
        out[f, : len(d), : len(c)] = box2d_iou(d.bbox, c, criterion=0)
    return out


def _batch(
    gts: list[KittiObjects], dts: list[KittiObjects], dontcare_cover: np.ndarray, cls: str, difficulty: int
) -> _Batch:
    clean = [clean_frame(g, d, cls, difficulty) for g, d in zip(gts, dts, strict=True)]
    num_d = dontcare_cover.shape[1]
    num_g = max([len(g) for g in gts] + [1])
    return _Batch(
        overlaps=np.zeros((len(gts), num_d, num_g)),  # replaced per metric by kitti_eval
        ignored_gt=_pad([c.ignored_gt for c in clean], num_g, -1).astype(np.int64),
        ignored_dt=_pad([c.ignored_dt for c in clean], num_d, -1).astype(np.int64),
        scores=_pad([d.score for d in dts], num_d, 0.0),
        gt_alpha=_pad([g.alpha for g in gts], num_g, 0.0),
        dt_alpha=_pad([d.alpha for d in dts], num_d, 0.0),
        dontcare_cover=dontcare_cover,
        num_valid_gt=int(sum((c.ignored_gt == 0).sum() for c in clean)),
    )


@dataclass
class _Counts:
    tp: np.ndarray  # (F, T)
    fp: np.ndarray  # (F, T)
    fn: np.ndarray  # (F, T)
    similarity: np.ndarray  # (F, T) sum of (1 + cos(d alpha)) / 2 over the true positives
    tp_scores: np.ndarray  # scores of the true positives (threshold collection pass)


def _match(b: _Batch, metric: str, min_overlap: float, thresholds: np.ndarray | None) -> _Counts:
    """The official ``compute_statistics`` for all frames and thresholds at once.

    ``thresholds=None`` is its first pass (``compute_fp=False``): every detection competes and
    the best-scoring one wins. Otherwise detections under each threshold drop out and the
    largest overlap wins, counted detections before ignored ones.
    """
    num_f, _, num_g = b.overlaps.shape
    counting = thresholds is not None
    if thresholds is None:
        active = np.ones((num_f, 1, b.scores.shape[1]), dtype=bool)  # (F, 1, D)
    else:
        active = b.scores[:, None, :] >= thresholds[None, :, None]  # (F, T, D)
    usable_dt = b.ignored_dt != -1  # (F, D)
    counted_dt = b.ignored_dt == 0
    assigned = np.zeros(active.shape, dtype=bool)  # (F, T, D)
    tp = np.zeros(active.shape[:2])
    fn = np.zeros(active.shape[:2])
    similarity = np.zeros(active.shape[:2])
    tp_scores = []
    f_idx = np.arange(num_f)[:, None]
    t_idx = np.arange(active.shape[1])[None, :]
    for g in range(num_g):
        ig = b.ignored_gt[:, g][:, None]  # (F, 1)
        above = b.overlaps[:, :, g] > min_overlap  # (F, D)
        cand = active & ~assigned & (usable_dt & above)[:, None, :]  # (F, T, D)
        if counting:
            good = cand & counted_dt[:, None, :]
            key = np.where(good, b.overlaps[:, None, :, g], -np.inf)
            best_good = key.argmax(-1)  # first of the largest overlaps
            first_ignored = (cand & ~counted_dt[:, None, :]).argmax(-1)
            has_good = good.any(-1)
            det = np.where(has_good, best_good, first_ignored)  # (F, T)
        else:
            det = np.where(cand, b.scores[:, None, :], -np.inf).argmax(-1)  # first of the best scores
        found = cand.any(-1) & (ig != -1)  # (F, T)
        det_counted = counted_dt[f_idx, det]  # (F, T)
        fn += ~found & (ig == 0)
        is_tp = found & (ig == 0) & det_counted
        tp += is_tp
        delta = b.gt_alpha[:, g][:, None] - b.dt_alpha[f_idx, det]
        similarity += np.where(is_tp, (1.0 + np.cos(delta)) / 2.0, 0.0)
        assigned[f_idx, t_idx, det] |= found
        if not counting:
            tp_scores.append(b.scores[f_idx, det][is_tp])
    free = active & ~assigned & counted_dt[:, None, :]  # (F, T, D)
    fp = free.sum(-1).astype(np.float64)
    if metric == "bbox":
        covered = np.any(b.dontcare_cover > min_overlap, axis=-1)  # (F, D)
        fp -= (free & covered[:, None, :]).sum(-1)
    scores = np.concatenate(tp_scores) if tp_scores else np.zeros(0)
    return _Counts(tp=tp, fp=fp, fn=fn, similarity=similarity, tp_scores=scores)


@dataclass
class Curves:
    """One metric's PR curves: (class, difficulty, overlap setting, 41) arrays."""

    precision: np.ndarray
    recall: np.ndarray
    orientation: np.ndarray  # AOS similarity over (TP + FP); only from the bbox metric


def _curves(b: _Batch, metric: str, min_overlap: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    first = _match(b, metric, min_overlap, thresholds=None)
    precision = np.zeros(NUM_SAMPLE_POINTS)
    recall = np.zeros(NUM_SAMPLE_POINTS)
    orientation = np.zeros(NUM_SAMPLE_POINTS)
    if b.num_valid_gt == 0 or len(first.tp_scores) == 0:
        return precision, recall, orientation
    thresholds = score_thresholds(first.tp_scores, b.num_valid_gt)
    counts = _match(b, metric, min_overlap, thresholds)
    tp, fp, fn = counts.tp.sum(0), counts.fp.sum(0), counts.fn.sum(0)  # (T,)
    n = len(thresholds)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall[:n] = tp / (tp + fn)
        precision[:n] = tp / (tp + fp)
        orientation[:n] = counts.similarity.sum(0) / (tp + fp)
    # Interpolated precision: the best at this recall or any higher one (the curve's right side).
    for arr in (precision, recall, orientation):
        arr[:n] = np.maximum.accumulate(arr[:n][::-1])[::-1]
    return precision, recall, orientation


@dataclass
class KittiEvalResult:
    """PR curves per metric; AP tables from them (percent)."""

    classes: tuple[str, ...]
    min_overlaps: np.ndarray  # (2, 3, C): overlap setting (strict, loose), metric, class
    curves: dict[str, Curves]  # "bbox", "bev", "3d"

    def ap(self, metric: str, points: int = 40) -> np.ndarray:
        """(C, 3 difficulties, 2 overlap settings) AP in percent; ``metric`` "aos" for AOS."""
        source = self.curves["bbox"].orientation if metric == "aos" else self.curves[metric].precision
        if points not in (11, 40):
            raise InputError(f"KITTI AP uses 11 or 40 points, got {points}")
        indices = range(0, NUM_SAMPLE_POINTS, 4) if points == 11 else range(1, NUM_SAMPLE_POINTS)
        # Summed one sample at a time, as the official code does, so the float64 rounding (and
        # hence the printed 4th decimal) is the same as theirs.
        total = np.zeros(source.shape[:-1])
        for i in indices:
            total = total + source[..., i]
        return total / points * 100

    def ret_dict(self) -> dict[str, float]:
        """OpenPCDet's result dict: strict-overlap AP40, keys ``Car_3d/moderate_R40`` etc."""
        names = {"aos": "aos", "3d": "3d", "bev": "bev", "bbox": "image"}
        out = {}
        for c, cls in enumerate(self.classes):
            for metric, key in names.items():
                row = self.ap(metric, 40)[c, :, 0]
                for d, difficulty in enumerate(DIFFICULTIES):
                    out[f"{cls}_{key}/{difficulty}_R40"] = float(row[d])
        return out

    def official_text(self, compute_aos: bool = True) -> str:
        """The text the official ``get_official_eval_result`` prints, line for line."""
        lines = []
        tables = {(m, p): self.ap(m, p) for m in (*METRICS, "aos") for p in (11, 40)}
        for c, cls in enumerate(self.classes):
            for k in range(self.min_overlaps.shape[0]):
                overlaps = ", ".join(f"{v:.2f}" for v in self.min_overlaps[k, :, c])
                for points, tag in ((11, "AP"), (40, "AP_R40")):
                    lines.append(f"{cls} {tag}@{overlaps}:")
                    for metric, label, digits in (("bbox", "bbox", 4), ("bev", "bev ", 4), ("3d", "3d  ", 4)):
                        row = tables[(metric, points)][c, :, k]
                        lines.append(f"{label} AP:" + ", ".join(f"{v:.{digits}f}" for v in row))
                    if compute_aos:
                        row = tables[("aos", points)][c, :, k]
                        lines.append("aos  AP:" + ", ".join(f"{v:.2f}" for v in row))
        return "".join(f"{line}\n" for line in lines)

    def table(self) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
        """``{"Car@strict": {"AP11": {"bbox": {"easy": ..}}}}``, the reference's layout."""
        out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
        for k, setting in enumerate(("strict", "loose")):
            for c, cls in enumerate(self.classes):
                out[f"{cls}@{setting}"] = {
                    f"AP{p}": {
                        m: {d: float(self.ap(m, p)[c, i, k]) for i, d in enumerate(DIFFICULTIES)}
                        for m in (*METRICS, "aos")
                    }
                    for p in (11, 40)
                }
        return out


def kitti_eval(
    gts: list[KittiObjects],
    dts: list[KittiObjects],
    classes: tuple[str, ...] = ("Car", "Pedestrian", "Cyclist"),
) -> KittiEvalResult:
    """Evaluate per-frame detections against per-frame ground truth (same order, same length)."""
    if len(gts) != len(dts):
        raise InputError(f"KITTI evaluation needs one detection list per frame: {len(gts)} vs {len(dts)}")
    for cls in classes:
        if cls not in MIN_OVERLAPS:
            raise InputError(
                f"no KITTI overlap thresholds for class '{cls}'; valid: {', '.join(MIN_OVERLAPS)}"
            )
    min_overlaps = np.array([[MIN_OVERLAPS[c][k] for c in classes] for k in range(2)]).transpose(0, 2, 1)
    shape = (len(classes), len(DIFFICULTIES), 2, NUM_SAMPLE_POINTS)
    overlaps = {metric: _padded_overlaps(gts, dts, metric) for metric in METRICS}
    cover = _dontcare_cover(gts, dts)
    curves = {metric: Curves(np.zeros(shape), np.zeros(shape), np.zeros(shape)) for metric in METRICS}
    for c, cls in enumerate(classes):
        for d in range(len(DIFFICULTIES)):
            batch = _batch(gts, dts, cover, cls, d)
            for m, metric in enumerate(METRICS):
                per_metric = replace(batch, overlaps=overlaps[metric])
                cur = curves[metric]
                for k in range(2):
                    p, r, o = _curves(per_metric, metric, float(min_overlaps[k, m, c]))
                    cur.precision[c, d, k], cur.recall[c, d, k], cur.orientation[c, d, k] = p, r, o
    return KittiEvalResult(classes=tuple(classes), min_overlaps=min_overlaps, curves=curves)
