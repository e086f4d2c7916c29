"""MOT metrics: the official results on the ViMON reference files, hand-made tracking cases
whose answers follow from the CLEAR-MOT definitions, RLE, and input validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from attnlab.errors import InputError
from attnlab.metrics.mot import (
    AUTHORS_PROTOCOL,
    MOTFrame,
    MOTProtocol,
    clips_to_json,
    frame_distances,
    gt_clips_from_masks,
    load_mot_json,
    mot_metrics,
    mot_metrics_from_json,
    mot_metrics_from_tensors,
    pred_clips_from_masks,
    rle_decode,
    rle_encode,
    slot_mot_metrics,
)

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "vimon"
ALL_FRAMES = MOTProtocol(start_step=0)


def _reference() -> Path:
    if not (REFERENCE / "mot_results.json").is_file():
        pytest.skip(f"ViMON reference files not found at {REFERENCE}")
    return REFERENCE


# ----------------------------------------------------------------------------- reference


@pytest.mark.parametrize(("key", "exclude_bg"), [("include_bg", False), ("exclude_bg", True)])
def test_json_reproduces_official_results_exactly(key: str, exclude_bg: bool) -> None:
    ref = _reference()
    expected = json.loads((ref / "mot_results.json").read_text())[key]
    got = mot_metrics_from_json(ref / "mot_gt.json", ref / "mot_pred.json", exclude_bg=exclude_bg).to_dict()
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == value, name  # bit-exact: same protocol, same float operations


def _reference_tensors(ref: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    golden = torch.load(ref / "vimon_vmds_golden.pt", weights_only=True)
    soft = golden["inference/curr_masks"][:, :, :, 0]  # (B, T, K, H, W)
    gt = load_mot_json(ref / "mot_gt.json")
    gt_masks = torch.from_numpy(np.stack([np.stack([f.masks for f in clip]) for clip in gt]))
    gt_ids = torch.tensor([[list(f.ids) for f in clip] for clip in gt])
    return soft, gt_masks, gt_ids


def test_official_results_score_frames_3_to_10_under_both_protocols() -> None:
    ref = _reference()
    ours = mot_metrics_from_json(ref / "mot_gt.json", ref / "mot_pred.json", exclude_bg=True)
    authors = mot_metrics_from_json(
        ref / "mot_gt.json", ref / "mot_pred.json", exclude_bg=True, protocol=AUTHORS_PROTOCOL
    )
    assert (ours.first_frame, ours.last_frame, ours.clip_frames) == (3, 10, 10)
    assert ours.frames == "frames 3-10 of 10"
    assert authors == ours  # on 10-frame clips the default is the authors' protocol


def test_annotation_of_official_masks_reproduces_prediction_file() -> None:
    # The reference prediction file is argmax(curr_masks), slot index + 100 + 6 * clip as id,
    # empty slots skipped: our conversion and RLE encoder must write exactly the same.
    ref = _reference()
    soft, _, _ = _reference_tensors(ref)
    written = clips_to_json(pred_clips_from_masks(soft, id_offset=100))
    assert written == json.loads((ref / "mot_pred.json").read_text())


def test_ground_truth_file_round_trips_through_rle() -> None:
    ref = _reference()
    original = json.loads((ref / "mot_gt.json").read_text())
    assert clips_to_json(load_mot_json(ref / "mot_gt.json"), with_num_bg=True) == original


@pytest.mark.parametrize(("key", "exclude_bg"), [("include_bg", False), ("exclude_bg", True)])
def test_tensor_entry_point_reproduces_official_results(key: str, exclude_bg: bool) -> None:
    ref = _reference()
    expected = json.loads((ref / "mot_results.json").read_text())[key]
    soft, gt_masks, gt_ids = _reference_tensors(ref)
    got = mot_metrics_from_tensors(soft, gt_masks, gt_ids, num_bg=1, exclude_bg=exclude_bg)
    assert got.to_dict() == expected


# ----------------------------------------------------------------------------- hand-made cases

SIZE = 16


def _box(row: int, col: int, height: int = 4, width: int = 4) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[row : row + height, col : col + width] = True
    return mask


def _frame(objects: dict[int, np.ndarray], num_bg: int = 0) -> MOTFrame:
    masks = np.stack(list(objects.values())) if objects else np.zeros((0, SIZE, SIZE), bool)
    return MOTFrame(masks, tuple(objects), num_bg)


A, B = _box(0, 0), _box(8, 8)


def test_perfect_tracking() -> None:
    gt = [[_frame({1: A, 2: B}) for _ in range(3)]]
    pred = [[_frame({7: A, 9: B}) for _ in range(3)]]
    m = mot_metrics(gt, pred, protocol=ALL_FRAMES)
    assert (m.num_frames, m.num_objects) == (3, 6)
    assert (m.mota, m.motp, m.num_matches) == (100.0, 100.0, 100.0)
    assert (m.num_misses, m.num_false_positives, m.num_switches) == (0.0, 0.0, 0.0)
    assert (m.mostly_tracked, m.mostly_detected) == (100.0, 100.0)


def test_id_switch_is_counted_once() -> None:
    # Track 7 follows object 1 for two frames, then track 8 takes over for two frames.
    gt = [[_frame({1: A}) for _ in range(4)]]
    pred = [[_frame({7: A}), _frame({7: A}), _frame({8: A}), _frame({8: A})]]
    m = mot_metrics(gt, pred, protocol=ALL_FRAMES)
    assert m.num_switches == 25.0  # 1 of 4 object-frames
    assert m.num_matches == 75.0  # the switch frame is not a match
    assert m.mota == 75.0
    assert m.motp == 100.0  # the switch still counts as a detection for MOTP
    assert m.mostly_tracked == 0.0  # matched in 3/4 < 80% of its frames
    assert m.mostly_detected == 100.0


def test_miss_and_false_positive() -> None:
    gt = [[_frame({1: A, 2: B}), _frame({1: A, 2: B})]]
    pred = [[_frame({7: A, 8: B}), _frame({7: A, 9: _box(0, 8)})]]  # B missed, a stray box
    m = mot_metrics(gt, pred, protocol=ALL_FRAMES)
    assert m.num_objects == 4
    assert (m.num_misses, m.num_false_positives, m.num_matches) == (25.0, 25.0, 75.0)
    assert m.mota == 50.0
    assert (m.mostly_tracked, m.mostly_detected) == (50.0, 50.0)  # B found in 1 of 2 frames


def test_iou_below_half_is_never_matched() -> None:
    # 8 of 16 pixels shared, union 24: IoU 1/3, so a miss and a false positive.
    gt = [[_frame({1: A})]]
    pred = [[_frame({7: _box(0, 2)})]]
    m = mot_metrics(gt, pred, protocol=ALL_FRAMES)
    assert (m.num_matches, m.num_misses, m.num_false_positives) == (0.0, 100.0, 100.0)
    assert m.mota == -100.0


def test_iou_of_exactly_half_is_matched() -> None:
    gt = [[_frame({1: A})]]
    pred = [[_frame({7: _box(0, 0, height=2)})]]  # 8 of the 16 pixels: IoU 0.5
    m = mot_metrics(gt, pred, protocol=ALL_FRAMES)
    assert (m.num_matches, m.mota, m.motp) == (100.0, 100.0, 50.0)


def test_masks_of_five_pixels_or_fewer_are_dropped() -> None:
    five, six = _box(0, 0, 1, 5), _box(8, 0, 1, 6)
    dist = frame_distances(_frame({1: five, 2: six}), _frame({7: five, 8: six}))
    assert (dist.gt_ids, dist.pred_ids) == ([2], [8])
    assert dist.distances.tolist() == [[0.0]]


def test_exclude_bg_drops_background_and_predictions_that_cover_it() -> None:
    background = ~(A | B)
    gt = [[_frame({1: A, 2: B, 3: background}, num_bg=1)]]
    # Slot 9 is most of the background (IoU > 0.2): neither a match nor a false positive.
    pred = [[_frame({7: A, 8: B, 9: background & ~_box(12, 0)})]]
    with_bg = mot_metrics(gt, pred, protocol=ALL_FRAMES)
    without_bg = mot_metrics(gt, pred, exclude_bg=True, protocol=ALL_FRAMES)
    assert (with_bg.num_objects, with_bg.num_matches) == (3, 100.0)
    assert (without_bg.num_objects, without_bg.num_matches, without_bg.num_false_positives) == (2, 100.0, 0.0)
    assert without_bg.motp == 100.0


def test_exclude_bg_keeps_predictions_barely_touching_background() -> None:
    background = ~A
    gt = [[_frame({1: A, 3: background}, num_bg=1)]]
    pred = [[_frame({7: A, 8: _box(8, 8)})]]  # IoU with the background 16/240 <= 0.2
    m = mot_metrics(gt, pred, exclude_bg=True, protocol=ALL_FRAMES)
    assert (m.num_objects, m.num_false_positives) == (1, 100.0)


def test_default_protocol_skips_the_first_two_frames() -> None:
    gt = [[_frame({1: A}) for _ in range(5)]]
    pred = [[_frame({}), _frame({}), _frame({7: A}), _frame({7: A}), _frame({7: A})]]
    m = mot_metrics(gt, pred)
    assert (m.num_frames, m.num_objects, m.mota) == (3, 3, 100.0)


# ----------------------------------------------------------------------------- tensors


def _slot_logits(assignment: list[list[np.ndarray]], num_slots: int) -> torch.Tensor:
    """Soft masks (B, T, K, H, W) whose argmax puts each listed box in its slot, the rest in
    the last slot."""
    logits = torch.zeros(len(assignment), len(assignment[0]), num_slots, SIZE, SIZE)
    logits[:, :, -1] = 1.0
    for b, clip in enumerate(assignment):
        for t, boxes in enumerate(clip):
            for k, box in enumerate(boxes):
                logits[b, t, k][torch.from_numpy(box)] = 5.0
    return logits.softmax(dim=2)


def test_tensor_ids_are_per_clip() -> None:
    # Object id 0 exists in both clips and is tracked by different slots: no ID switch, since
    # ids (and slots) of different clips are different tracks.
    gt_masks = torch.from_numpy(np.stack([np.stack([A[None]] * 3), np.stack([A[None]] * 3)]))
    gt_ids = torch.zeros(2, 3, 1, dtype=torch.long)
    soft = _slot_logits([[[A]] * 3, [[np.zeros_like(A), A]] * 3], num_slots=3)
    m = mot_metrics_from_tensors(soft, gt_masks, gt_ids, protocol=ALL_FRAMES)
    assert (m.num_objects, m.num_switches, m.num_matches) == (6, 0.0, 100.0)
    # The last slot holds everything else: one false positive per frame.
    assert m.num_false_positives == 100.0


def test_tensor_padding_ids_are_ignored_and_background_is_last_used_entry() -> None:
    background = ~A
    gt_masks = torch.from_numpy(np.stack([A, background, B])[None, None])  # (1, 1, 3, H, W)
    gt_ids = torch.tensor([[[4, 5, -1]]])  # B is padding; the background is entry 1
    soft = _slot_logits([[[A]]], num_slots=2)
    clips = gt_clips_from_masks(gt_masks, gt_ids, num_bg=1)
    assert clips[0][0].ids == (4, 5) and clips[0][0].num_bg == 1
    m = mot_metrics_from_tensors(soft, gt_masks, gt_ids, num_bg=1, exclude_bg=True, protocol=ALL_FRAMES)
    assert (m.num_objects, m.num_matches, m.num_false_positives) == (1, 100.0, 0.0)


def test_bool_pred_masks_are_used_as_given() -> None:
    hard = torch.from_numpy(np.stack([A, A])[None, None])  # two slots claim the same pixels
    clips = pred_clips_from_masks(hard)
    assert clips[0][0].ids == (0, 1)
    assert np.array_equal(clips[0][0].masks, np.stack([A, A]))


# ----------------------------------------------------------------------------- RLE


def test_rle_known_encoding() -> None:
    mask = np.array([[0, 1, 1], [1, 0, 1]], dtype=bool)  # row-major: 0 1 1 1 0 1
    assert rle_encode(mask) == "2 3 6 1"
    assert np.array_equal(rle_decode("2 3 6 1", (2, 3)), mask)


def test_rle_round_trip() -> None:
    rng = np.random.default_rng(0)
    cases = [rng.random((7, 9)) < 0.5 for _ in range(20)]
    cases += [np.zeros((4, 5), bool), np.ones((4, 5), bool), np.eye(5, dtype=bool)]
    for mask in cases:
        text = rle_encode(torch.from_numpy(mask))
        assert np.array_equal(rle_decode(text, mask.shape), mask)


def test_rle_empty_and_overlapping_runs() -> None:
    assert not rle_decode("", (3, 3)).any()
    assert rle_decode("1 3 2 3", (1, 6)).tolist() == [[True] * 4 + [False] * 2]


# ----------------------------------------------------------------------------- bad inputs


def _one_line_error(call: object, match: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        call()  # type: ignore[operator]
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("rle", "match"),
    [
        ("4090 10", "beyond the image"),
        ("1 2 3", "pairs"),
        ("1 x", "integers"),
        ("0 2", ">= 1"),
        ("3 -1", ">= 1"),
    ],
)
def test_bad_rle(rle: str, match: str) -> None:
    _one_line_error(lambda: rle_decode(rle, (64, 64)), match)


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        ({"masks": ["1 3"]}, "keys 'masks' and 'ids'"),
        ({"masks": ["1 3"], "ids": [1, 2]}, "same length"),
        ({"masks": ["1 3", "9 3"], "ids": [1, 1]}, "repeat"),
        ({"masks": ["1 3"], "ids": ["a"]}, "integers"),
        ({"masks": ["60 10"], "ids": [1]}, r"clip 0, frame 0: RLE run ends"),
        ({"masks": ["1 3"], "ids": [1], "num_bg": 2}, "num_bg"),
    ],
)
def test_bad_json_frames(tmp_path: Path, frame: dict[str, object], match: str) -> None:
    path = _write(tmp_path, "gt.json", [[frame]])
    _one_line_error(lambda: load_mot_json(path, image_size=8), match)


def test_bad_json_files(tmp_path: Path) -> None:
    _one_line_error(lambda: load_mot_json(tmp_path / "missing.json"), "not found")
    (tmp_path / "broken.json").write_text("[[{")
    _one_line_error(lambda: load_mot_json(tmp_path / "broken.json"), "not valid JSON")
    _one_line_error(lambda: load_mot_json(_write(tmp_path, "d.json", {"a": 1})), "list of clips")
    frame = {"masks": ["1 9"], "ids": [1]}
    gt, pred = _write(tmp_path, "gt.json", [[frame] * 3]), _write(tmp_path, "pred.json", [[frame] * 3] * 2)
    _one_line_error(lambda: mot_metrics_from_json(gt, pred, image_size=8), "1 ground-truth clips but 2")
    _one_line_error(lambda: mot_metrics_from_json(gt, gt, image_size=8, exclude_bg=True), "num_bg >= 1")
    short = _write(tmp_path, "short.json", [[frame] * 2])
    _one_line_error(lambda: mot_metrics_from_json(short, short, image_size=8), "2 frames, too few")
    late = MOTProtocol(stop_step=4)
    _one_line_error(lambda: mot_metrics_from_json(gt, gt, image_size=8, protocol=late), "3 frames, too few")


def test_bad_tensors() -> None:
    soft = torch.rand(1, 3, 2, SIZE, SIZE)
    gt_masks = torch.zeros(1, 3, 1, SIZE, SIZE, dtype=torch.bool)
    gt_ids = torch.zeros(1, 3, 1, dtype=torch.long)
    _one_line_error(lambda: mot_metrics_from_tensors(soft[:, :, :, None], gt_masks, gt_ids), "squeeze")
    _one_line_error(lambda: mot_metrics_from_tensors(soft.long(), gt_masks, gt_ids), "floating")
    _one_line_error(lambda: mot_metrics_from_tensors(soft[..., :8], gt_masks, gt_ids), "agree")
    _one_line_error(lambda: mot_metrics_from_tensors(soft, gt_masks, gt_ids[..., :0]), "gt_ids")
    _one_line_error(lambda: mot_metrics_from_tensors(soft, gt_masks, [[[0]] * 3]), "gt_ids must be")  # type: ignore[arg-type]
    _one_line_error(
        lambda: mot_metrics_from_tensors(soft, gt_masks, gt_ids, num_bg=2), "clip 0, frame 0: num_bg"
    )
    _one_line_error(lambda: mot_metrics_from_tensors(soft, gt_masks.float() + 2, gt_ids), "binary")
    _one_line_error(lambda: mot_metrics_from_tensors(soft, gt_masks, gt_ids, exclude_bg=True), "num_bg")
    _one_line_error(lambda: mot_metrics_from_tensors(soft * torch.nan, gt_masks, gt_ids), "NaN")


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"start_step": -1}, "start_step"),
        ({"start_step": 3, "stop_step": 3}, "stop_step"),
        ({"iou_threshold": 1.5}, "iou_threshold"),
        ({"min_num_pixels": -1}, "min_num_pixels"),
        ({"start_step": 2.0}, "integers"),
    ],
)
def test_bad_protocol(fields: dict[str, int | float], match: str) -> None:
    _one_line_error(lambda: MOTProtocol(**fields), match)


def test_frame_without_ground_truth_counts_false_positives() -> None:
    gt = [[_frame({1: A}), _frame({})]]
    pred = [[_frame({7: A}), _frame({7: A})]]
    m = mot_metrics(gt, pred, protocol=ALL_FRAMES)
    assert (m.num_objects, m.num_matches, m.num_false_positives, m.mota) == (1, 100.0, 100.0, 0.0)


def test_exclude_bg_with_no_true_mask_left_excludes_nothing() -> None:
    # In frame 1 the background is too small to survive, so no prediction can be excluded.
    tiny = _box(15, 15, 1, 1)
    gt = [[_frame({1: A, 3: ~A}, num_bg=1), _frame({3: tiny}, num_bg=1)]]
    pred = [[_frame({7: A}), _frame({7: A})]]
    m = mot_metrics(gt, pred, exclude_bg=True, protocol=ALL_FRAMES)
    assert (m.num_objects, m.num_matches, m.num_false_positives) == (1, 100.0, 100.0)


def test_prediction_with_background_iou_of_exactly_0_2_is_kept() -> None:
    # Background ~A has 240 pixels; a 48-pixel prediction inside it has IoU 0.2 (kept, a false
    # positive), a 52-pixel one IoU > 0.2 (excluded).
    gt = [[_frame({1: A, 3: ~A}, num_bg=1)] * 2]
    pred = [[_frame({7: A, 8: _box(4, 0, 4, 12)}), _frame({7: A, 8: _box(4, 0, 4, 13)})]]
    m = mot_metrics(gt, pred, exclude_bg=True, protocol=ALL_FRAMES)
    assert (m.num_objects, m.num_matches, m.num_false_positives) == (2, 100.0, 50.0)


def test_object_found_in_exactly_80_percent_of_frames_is_mostly_tracked() -> None:
    gt = [[_frame({1: A, 2: B})] * 5]
    pred = [[_frame({7: A, 8: B})] * 4 + [_frame({7: A})]]  # B missed once: 4/5 frames
    m = mot_metrics(gt, pred, protocol=ALL_FRAMES)
    assert (m.mostly_tracked, m.mostly_detected, m.num_misses) == (100.0, 100.0, 10.0)


def test_no_true_objects_gives_nan_percentages() -> None:
    m = mot_metrics([[_frame({})]], [[_frame({7: A})]], protocol=ALL_FRAMES)
    assert m.num_objects == 0
    assert all(np.isnan(v) for v in (m.mota, m.num_false_positives, m.mostly_tracked, m.mostly_detected))


def test_no_true_objects_in_any_clip_gives_nan_not_infinities() -> None:
    # The reference gives MOTA -inf and a false-positive rate of +inf here (numpy divisions by
    # zero), NaN for the rest; ours is NaN throughout, and no frame of the set raises.
    gt = [[_frame({}) for _ in range(4)] for _ in range(2)]
    pred = [[_frame({7: A}), _frame({}), _frame({7: A, 8: B}), _frame({})], [_frame({})] * 4]
    m = mot_metrics(gt, pred)
    assert (m.num_frames, m.num_objects) == (4, 0)
    rates = (m.num_matches, m.num_switches, m.num_false_positives, m.num_misses)
    assert all(np.isnan(v) for v in (m.mota, m.motp, *rates, m.mostly_tracked, m.mostly_detected))
    assert m.frames == "frames 3-4 of 4"


def test_clips_with_background_only_give_nan_with_background_excluded() -> None:
    # Sprite clips without sprites: the ground truth is the background alone, and the slot that
    # covers it is excluded with it, so nothing is left to score; the small slot is a false
    # positive over zero objects.
    gt_masks = torch.ones(2, 3, 1, SIZE, SIZE, dtype=torch.bool)
    gt_ids = torch.zeros(2, 3, 1, dtype=torch.long)
    soft = _slot_logits([[[A]] * 3] * 2, num_slots=2)
    m = mot_metrics_from_tensors(soft, gt_masks, gt_ids, num_bg=1, exclude_bg=True, protocol=ALL_FRAMES)
    assert (m.num_frames, m.num_objects) == (6, 0)
    assert all(np.isnan(v) for v in (m.mota, m.num_false_positives, m.mostly_tracked))


def test_every_result_says_which_frames_it_scored() -> None:
    long_gt = [[_frame({1: A}) for _ in range(12)]]
    long_pred = [[_frame({7: A}) for _ in range(12)]]
    ours = mot_metrics(long_gt, long_pred)
    assert (ours.num_frames, ours.first_frame, ours.last_frame, ours.clip_frames) == (10, 3, 12, 12)
    assert ours.frames == "frames 3-12 of 12"
    authors = mot_metrics(long_gt, long_pred, protocol=AUTHORS_PROTOCOL)
    assert (authors.num_frames, authors.last_frame, authors.frames) == (8, 10, "frames 3-10 of 12")
    assert "first_frame" not in ours.to_dict()  # the benchmark's result-file keys only
    mixed = mot_metrics([*long_gt, long_gt[0][:10]], [*long_pred, long_pred[0][:10]])
    assert (mixed.num_frames, mixed.last_frame) == (18, 12)
    assert mixed.frames == "frames 3-10 of 10, 3-12 of 12"
    assert mot_metrics([], []).frames == "frames: not recorded"


def test_frames_of_different_image_sizes_are_rejected() -> None:
    small = MOTFrame(np.ones((1, 8, 8), bool), (7,))
    _one_line_error(lambda: frame_distances(_frame({1: A}), small), "image size")


# ----------------------------------------------------------------------------- slot partitions
def _two_squares(frames: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A clip (1, T, 8, 8) of two 3x3 objects on a floor: the segmentation (0 the floor), the masks
    (1, T, 3, 8, 8) with the floor first and the ids (1, 2)."""
    segmentation = torch.zeros(1, frames, 8, 8, dtype=torch.int64)
    segmentation[:, :, 0:3, 0:3] = 1
    segmentation[:, :, 4:7, 4:7] = 2
    masks = segmentation[:, :, None] == torch.arange(3)[None, None, :, None, None]
    return segmentation, masks, torch.tensor([[1, 2]])


def test_slot_partitions_are_tracks_and_the_floors_slot_is_excluded() -> None:
    segmentation, masks, ids = _two_squares(4)  # the protocol scores frames 3 and 4
    slot_ids = torch.tensor([0, 2, 5])[segmentation]  # the floor in slot 0, the objects in 2 and 5
    m = slot_mot_metrics(slot_ids, masks, ids, num_slots=6)
    assert (m.num_objects, m.mota, m.num_switches, m.mostly_tracked) == (4, 100.0, 0.0, 100.0)
    # object 1 moves to slot 3 in the last frame: one switch in 4 object-frames
    switched = slot_ids.clone()
    switched[:, 3][segmentation[:, 3] == 1] = 3
    assert slot_mot_metrics(switched, masks, ids, num_slots=6).num_switches == 25.0
    # slot 4 takes 8 pixels of floor (IoU with the floor 8 / 46 < 0.2): a false positive a frame
    split = slot_ids.clone()
    split[:, :, 7, :] = 4
    m = slot_mot_metrics(split, masks, ids, num_slots=6)
    assert (m.num_false_positives, m.mota) == (50.0, 50.0)
