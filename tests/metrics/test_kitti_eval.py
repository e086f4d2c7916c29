"""KITTI evaluation against the official Python evaluation's tables (../shared/reference/kitti_eval).

The reference README: AP values match to 1e-6 (exact sums of count ratios), IoU matrices to
atol 5e-4 (the official rotated IoU is float32; every IoU is > 1e-3 from a threshold).
"""

import json
from pathlib import Path

import numpy as np
import pytest

from attnlab.data.kitti import read_labels, read_split
from attnlab.errors import InputError
from attnlab.metrics.kitti_eval import (
    DIFFICULTIES,
    METRICS,
    KittiEvalResult,
    clean_frame,
    frame_overlaps,
    kitti_eval,
    score_thresholds,
)
from attnlab.metrics.kitti_objects import KittiObjects

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "kitti_eval"
SETS = ("edge_cases", "mixed")


def _frames(name: str) -> tuple[list[str], list[KittiObjects], list[KittiObjects]]:
    if not (REFERENCE / "inputs" / name / "val.txt").is_file():
        pytest.skip(f"KITTI evaluation reference not found at {REFERENCE}")
    base = REFERENCE / "inputs" / name
    ids = read_split(base / "val.txt")
    gts = read_labels(base / "label_2", ids)
    dts = read_labels(base / "detections", ids)
    return ids, gts, dts


def _results(name: str) -> dict:
    return {f.stem: json.loads(f.read_text()) for f in (REFERENCE / "results" / name).glob("*.json")}


@pytest.fixture(scope="module", params=SETS)
def evaluated(request) -> tuple[str, KittiEvalResult]:
    _, gts, dts = _frames(request.param)
    return request.param, kitti_eval(gts, dts)


def test_ap_tables_match_the_official_evaluation(evaluated):
    name, result = evaluated
    reference = _results(name)["ap_results"]["tables"]
    ours = result.table()
    assert set(ours) == set(reference)
    for key, table in reference.items():
        assert ours[key]["AP11"].keys() == table["AP11"].keys()
        for points in ("AP11", "AP40"):
            for metric, row in table[points].items():
                for difficulty, value in row.items():
                    got = ours[key][points][metric][difficulty]
                    assert got == pytest.approx(value, abs=1e-6), (key, points, metric, difficulty)


def test_openpcdets_result_dict_matches(evaluated):
    name, result = evaluated
    expected = _results(name)["ap_results"]["official_ret_dict"]
    ours = result.ret_dict()
    assert ours.keys() == expected.keys()
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value, abs=1e-6), key


def test_the_printed_text_is_the_official_one(evaluated):
    name, result = evaluated
    expected = (REFERENCE / "results" / name / "official_result_string.txt").read_text()
    assert result.official_text() == expected


def test_the_quoted_mixed_moderate_numbers():
    # The README's headline numbers, typed in by hand (Car strict moderate, AP11 / AP40).
    _, gts, dts = _frames("mixed")
    result = kitti_eval(gts, dts, classes=("Car",))
    car = {m: (result.ap(m, 11)[0, 1, 0], result.ap(m, 40)[0, 1, 0]) for m in ("bbox", "bev", "3d", "aos")}
    np.testing.assert_allclose(car["bbox"], [72.1061, 72.2999], atol=1e-4)
    np.testing.assert_allclose(car["bev"], [32.2649, 29.8469], atol=1e-4)
    np.testing.assert_allclose(car["3d"], [21.4329, 19.4841], atol=1e-4)
    np.testing.assert_allclose(car["aos"], [64.6228, 63.5924], atol=1e-4)


def test_pr_curves_match(evaluated):
    name, result = evaluated
    reference = _results(name)["pr_curves"]
    for metric in METRICS:
        np.testing.assert_allclose(result.curves[metric].precision, reference[metric]["precision"], atol=1e-9)
        np.testing.assert_allclose(result.curves[metric].recall, reference[metric]["recall"], atol=1e-9)
    np.testing.assert_allclose(
        result.curves["bbox"].orientation, reference["aos"]["orientation_similarity"], atol=1e-9
    )


@pytest.mark.parametrize("name", SETS)
def test_iou_matrices_match(name):
    ids, gts, dts = _frames(name)
    reference = _results(name)["iou_matrices"]
    for metric in METRICS:
        for frame, gt, dt in zip(ids, gts, dts, strict=True):
            expected = np.array(reference[metric][frame], dtype=np.float64).reshape(len(dt), len(gt))
            np.testing.assert_allclose(
                frame_overlaps(gt, dt, metric), expected, atol=5e-4, err_msg=f"{metric} {frame}"
            )


@pytest.mark.parametrize("name", SETS)
def test_ignore_flags_and_valid_counts_match(name):
    ids, gts, dts = _frames(name)
    reference = _results(name)["clean_data"]
    for key, entry in reference.items():
        cls, difficulty = key.split("/")
        d = DIFFICULTIES.index(difficulty)
        valid = 0
        for frame, gt, dt in zip(ids, gts, dts, strict=True):
            clean = clean_frame(gt, dt, cls, d)
            assert clean.ignored_gt.tolist() == entry["per_frame"][frame]["ignored_gt"], (key, frame)
            assert clean.ignored_dt.tolist() == entry["per_frame"][frame]["ignored_dt"], (key, frame)
            valid += int((clean.ignored_gt == 0).sum())
        assert valid == entry["num_valid_gt"], key


def test_score_thresholds_take_every_true_positive_below_40_and_sample_above():
    # 5 valid gt: every score is a threshold (recall jumps by 1/5 > 1/40 each time).
    np.testing.assert_array_equal(score_thresholds(np.array([0.1, 0.9, 0.5]), 5), [0.9, 0.5, 0.1])
    # 80 gt and 80 true positives: recall steps of 1/80, so every second score is kept: 41 thresholds.
    scores = np.linspace(1.0, 0.01, 80)
    chosen = score_thresholds(scores, 80)
    assert len(chosen) == 41
    np.testing.assert_allclose(chosen[:3], scores[[0, 1, 3]])


def test_a_perfect_detector_scores_100_and_a_flipped_heading_only_loses_aos():
    _, gts, _ = _frames("edge_cases")
    gt = gts[6]  # six jittered cars
    fields = KittiObjects.__dataclass_fields__
    cars = KittiObjects(**{f: getattr(gt, f)[gt.name == "Car"] for f in fields})
    # 50 copies of the frame: over 40 valid boxes, so the 41 thresholds are recall positions
    # (with fewer, AP40 of a perfect detector is (n - 1) / 40, as the official code gives).
    frames = 50
    scores = np.linspace(0.99, 0.01, frames * len(cars)).reshape(frames, len(cars))
    perfect = [KittiObjects(**{**cars.__dict__, "score": s}) for s in scores]
    assert (clean_frame(cars, perfect[0], "Car", 2).ignored_gt == 0).sum() * frames > 40
    result = kitti_eval([cars] * frames, perfect, classes=("Car",))
    hard = 2
    assert result.ap("3d", 40)[0, hard, 0] == pytest.approx(100.0)
    assert result.ap("aos", 40)[0, hard, 0] == pytest.approx(100.0)
    flipped = [
        KittiObjects(**{**p.__dict__, "alpha": p.alpha + np.pi, "rotation_y": p.rotation_y + np.pi})
        for p in perfect
    ]
    result = kitti_eval([cars] * frames, flipped, classes=("Car",))
    assert result.ap("3d", 40)[0, hard, 0] == pytest.approx(100.0)
    assert result.ap("aos", 40)[0, hard, 0] == pytest.approx(0.0, abs=1e-9)


def test_bad_arguments_fail_with_one_line():
    with pytest.raises(InputError, match="one detection list per frame"):
        kitti_eval([KittiObjects.empty()], [])
    with pytest.raises(InputError, match="no KITTI overlap thresholds for class 'Tram'"):
        kitti_eval([], [], classes=("Tram",))
    with pytest.raises(InputError, match="unknown KITTI metric"):
        frame_overlaps(KittiObjects.empty(), KittiObjects.empty(), "iou")
