"""KITTI reader: the two real frames of ../shared/reference/kitti_eval/demo_frames against what
zhulf0804/PointPillars' own functions computed from them, and one-line errors for bad files."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from attnlab.data.kitti import (
    KittiReader,
    boxes_camera_to_lidar,
    difficulty,
    format_label_lines,
    lidar_box_corners,
    parse_label_lines,
    points_in_boxes,
    read_calib,
    read_points,
    read_split,
    write_points,
)
from attnlab.errors import InputError

DEMO = Path(__file__).resolve().parents[3] / "shared" / "reference" / "kitti_eval" / "demo_frames"


@pytest.fixture(scope="module")
def golden() -> dict:
    if not (DEMO / "reader_golden.json").is_file():
        pytest.skip(f"KITTI demo frames not found at {DEMO}")
    return json.loads((DEMO / "reader_golden.json").read_text())


@pytest.mark.parametrize(("split", "frame"), [("training", "000134"), ("testing", "000002")])
def test_reader_loads_the_real_frames(golden, split, frame):
    expected = golden[f"{split}/{frame}"]
    for rel, info in expected["files"].items():
        assert hashlib.md5((DEMO / rel).read_bytes()).hexdigest() == info["md5"], rel
    data = KittiReader(DEMO, split).read(frame)
    pts = expected["points"]
    assert data.points.shape == tuple(pts["shape"]) and data.points.dtype == np.float32
    np.testing.assert_array_equal(data.points[:5], np.array(pts["first5"], dtype=np.float32))
    np.testing.assert_array_equal(data.points[-2:], np.array(pts["last2"], dtype=np.float32))
    np.testing.assert_array_equal(data.points.min(0), np.array(pts["min"], dtype=np.float32))
    np.testing.assert_array_equal(data.points.max(0), np.array(pts["max"], dtype=np.float32))
    np.testing.assert_allclose(data.points.astype(np.float64).mean(0), pts["mean_float64"], rtol=1e-12)
    assert data.image_shape == tuple(expected["image_shape_hw"])
    calib = expected["calib_extended_4x4"]
    for i in range(4):
        np.testing.assert_allclose(data.calib.P[i], calib[f"P{i}"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(data.calib.R0_rect, calib["R0_rect"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(data.calib.Tr_velo_to_cam, calib["Tr_velo_to_cam"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(data.calib.Tr_imu_to_velo, calib["Tr_imu_to_velo"], rtol=1e-6, atol=1e-7)
    assert (data.objects is None) == (split == "testing")


def test_labels_difficulty_boxes_and_points_in_boxes_match_pointpillars(golden):
    expected = golden["training/000134"]["label"]
    frame = KittiReader(DEMO).read("000134")
    obj = frame.objects
    assert obj is not None
    assert obj.name.tolist() == expected["name"]
    np.testing.assert_allclose(obj.truncated, expected["truncated"], atol=1e-6)
    assert obj.occluded.tolist() == expected["occluded"]
    np.testing.assert_allclose(obj.alpha, expected["alpha"], atol=1e-6)
    np.testing.assert_allclose(obj.bbox, expected["bbox"], atol=1e-4)
    np.testing.assert_allclose(obj.dimensions, expected["dimensions"], atol=1e-6)  # l h w
    np.testing.assert_allclose(obj.location, expected["location"], atol=1e-6)
    np.testing.assert_allclose(obj.rotation_y, expected["rotation_y"], atol=1e-6)
    assert (
        difficulty(obj).tolist()
        == expected["difficulty"]
        == [0, 1, 1, 0, 1, 2, 0, 1, 0, 1, 0, 0, 1, 2, 1, -1, -1]
    )

    real = obj.name != "DontCare"
    np.testing.assert_allclose(obj.boxes_camera()[real], expected["boxes_camera_xyz_lhw_ry"], atol=1e-6)
    lidar = boxes_camera_to_lidar(obj, frame.calib)[real]
    # PointPillars computes in float32: agree to its rounding.
    np.testing.assert_allclose(lidar, expected["boxes_lidar_xyz_wlh_ry"], atol=2e-5)
    np.testing.assert_allclose(lidar_box_corners(lidar), expected["boxes_lidar_corners"], atol=5e-5)
    inside = points_in_boxes(frame.points, lidar)  # (N, K)
    counts = [*inside.sum(0).tolist(), -1, -1]
    assert counts == expected["num_points_in_gt"]
    assert counts[:3] == [570, 160, 81]  # the README's numbers, typed in

    back = frame.calib.lidar_to_camera(frame.calib.camera_to_lidar(obj.location))
    assert np.abs(back - obj.location).max() < 1e-9  # float64: far below PointPillars' 8.6e-7


def test_projecting_a_labelled_box_lands_in_its_2d_box(golden):
    # An independent check of P2 and the camera frame: the car's 8 projected corners span its bbox.
    frame = KittiReader(DEMO).read("000134")
    obj = frame.objects
    assert obj is not None
    lidar = boxes_camera_to_lidar(obj, frame.calib)[:1]
    corners = frame.calib.lidar_to_camera(lidar_box_corners(lidar)[0])
    pixels = frame.calib.camera_to_image(corners)
    box = np.concatenate([pixels.min(0), pixels.max(0)])
    np.testing.assert_allclose(box, obj.bbox[0], atol=0.5)  # the label rounds to 0.01 px


def test_label_lines_round_trip(tmp_path):
    lines = [
        "Car 0.00 0 -1.33 333.28 177.65 489.60 277.55 1.50 1.78 3.69 -3.29 1.46 12.65 -1.57",
        "DontCare -1 -1 -10.00 623.97 162.02 652.39 174.14 -1.00 -1.00 -1.00 -1000.00 -1000.00 -1000.00"
        " -10.00",
    ]
    obj = parse_label_lines(lines)
    np.testing.assert_allclose(obj.dimensions[0], [3.69, 1.50, 1.78])  # l h w
    again = parse_label_lines(format_label_lines(obj))
    for field in ("truncated", "occluded", "alpha", "bbox", "dimensions", "location", "rotation_y"):
        np.testing.assert_allclose(getattr(again, field), getattr(obj, field), atol=1e-9)
    dets = parse_label_lines([lines[0] + " 0.8125"])
    assert dets.score.tolist() == [0.8125]
    assert parse_label_lines(format_label_lines(dets, with_score=True)).score.tolist() == [0.8125]


def test_points_and_split_round_trip(tmp_path):
    pts = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    write_points(tmp_path / "a.bin", pts)
    np.testing.assert_array_equal(read_points(tmp_path / "a.bin"), pts)
    (tmp_path / "val.txt").write_text("000001\n000007\n")
    assert read_split(tmp_path / "val.txt") == ["000001", "000007"]


def _frame_dir(tmp_path: Path) -> Path:
    base = tmp_path / "training"
    for sub in ("velodyne", "label_2", "calib"):
        (base / sub).mkdir(parents=True)
    calib = (DEMO / "training" / "calib" / "000134.txt").read_text()
    label = "Car 0.00 0 -1.33 333.28 177.65 489.60 277.55 1.50 1.78 3.69 -3.29 1.46 12.65 -1.57\n"
    for i in range(3):
        write_points(base / "velodyne" / f"{i:06d}.bin", np.ones((5, 4)))
        (base / "calib" / f"{i:06d}.txt").write_text(calib)
        (base / "label_2" / f"{i:06d}.txt").write_text(label)
    return tmp_path


def test_bad_files_fail_with_one_clear_line(tmp_path, golden):
    root = _frame_dir(tmp_path)
    base = root / "training"
    (base / "velodyne" / "000000.bin").write_bytes(b"\0" * 20)
    with pytest.raises(InputError, match="20 bytes is not a multiple of 16") as err:
        read_points(base / "velodyne" / "000000.bin")
    assert "\n" not in str(err.value)
    nan = np.ones((3, 4), np.float32)
    nan[1, 2] = np.nan
    write_points(base / "velodyne" / "000000.bin", nan)
    with pytest.raises(InputError, match="1 points with NaN or inf coordinates"):
        read_points(base / "velodyne" / "000000.bin")
    write_points(base / "velodyne" / "000000.bin", np.zeros((0, 4)))
    with pytest.raises(InputError, match="empty scene"):
        read_points(base / "velodyne" / "000000.bin")
    with pytest.raises(InputError, match=r":1: unknown class 'Bus'"):
        parse_label_lines(["Bus 0 0 0 1 1 2 2 1 1 1 0 0 5 0"])
    with pytest.raises(InputError, match="14 fields, a KITTI label line has 15"):
        parse_label_lines(["Car 0 0 0 1 1 2 2 1 1 1 0 0 5"])
    with pytest.raises(InputError, match="calibration file not found"):
        read_calib(tmp_path / "nope.txt")
    (base / "calib" / "000001.txt").write_text("P0: 1 2 3\n")
    with pytest.raises(InputError, match="calibration lacks P1, P2, P3, R0_rect, Tr_velo_to_cam"):
        read_calib(base / "calib" / "000001.txt")


def test_the_loader_skips_and_counts_broken_frames_only_when_asked(tmp_path, golden):
    root = _frame_dir(tmp_path)
    (root / "training" / "velodyne" / "000001.bin").write_bytes(b"\0" * 17)
    (root / "training" / "calib" / "000002.txt").unlink()
    with pytest.raises(InputError, match=r"000001\.bin: 17 bytes"):
        KittiReader(root).frames()
    reader = KittiReader(root, skip_broken=True)
    frames = reader.frames()
    assert [f.frame_id for f in frames] == ["000000"]
    assert sorted(reader.skipped) == ["000001", "000002"]
    assert "calibration file not found" in reader.skipped["000002"]
    with pytest.raises(InputError, match="no velodyne/ folder"):
        KittiReader(tmp_path / "missing")
