"""Synthetic KITTI scenes: ray casting on hand-placed boxes, labels as KITTI defines them, and a
round trip of the written files through the KITTI reader."""

import math
from dataclasses import replace

import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

from attnlab.data.kitti import KittiReader, boxes_camera_to_lidar, difficulty, points_in_boxes, read_split
from attnlab.data.synth_kitti import (
    GROUND,
    LidarConfig,
    Primitives,
    SceneConfig,
    _labels,
    beam_directions,
    camera_image,
    cast_rays,
    default_calibration,
    generate_scene,
    write_synth_kitti,
)
from attnlab.errors import ConfigError


def _boxes(*rows):
    boxes = np.array(rows, dtype=np.float64).reshape(-1, 7)
    return Primitives(
        boxes=boxes,
        box_owner=np.arange(len(boxes)),
        box_albedo=np.full(len(boxes), 0.3),
        poles=np.zeros((0, 5)),
        bushes=np.zeros((0, 5)),
    )


def test_rays_hit_the_near_face_of_a_hand_placed_box_and_it_hides_the_one_behind():
    lidar = LidarConfig()
    ground = -lidar.height
    # A 4 x 2 x 1.5 m box centred 10 m ahead (near face at x = 8) and a lower one behind it.
    prims = _boxes([10, 0, ground, 4, 2, 1.5, 0], [20, 0, ground, 4, 2, 1.0, 0])
    cast = cast_rays(lidar, prims, 2, np.random.default_rng(0))
    dirs = beam_directions(lidar)
    hit = cast.owner == 0
    pts = dirs[hit] * cast.distance[hit][:, None]
    top = ground + 1.5
    on_near_face = (
        np.isclose(pts[:, 0], 8.0, atol=1e-9) & (pts[:, 2] >= ground - 1e-9) & (pts[:, 2] <= top + 1e-9)
    )
    on_top = np.isclose(pts[:, 2], top, atol=1e-9) & (pts[:, 0] >= 8 - 1e-9) & (pts[:, 0] <= 12 + 1e-9)
    assert np.all((on_near_face | on_top) & (np.abs(pts[:, 1]) <= 1 + 1e-9))
    assert on_near_face.sum() > on_top.sum() > 0  # the sensor is 0.23 m above the top: it sees it too
    # Columns: the near face spans 2 * atan(1 / 8) of azimuth at 0.2 degree steps; beams: the
    # elevations from the near bottom edge, atan(-1.73 / 8), to the far top edge, atan(-0.23 / 12),
    # at (2 + 24.8) / 63 degree spacing.
    cols = 2 * math.degrees(math.atan(1 / 8)) / 0.2
    beams = (math.degrees(math.atan(1.73 / 8)) - math.degrees(math.atan(0.23 / 12))) / (26.8 / 63)
    assert abs(hit.any(0).sum() - cols) <= 2 and abs(hit.any(1).sum() - beams) <= 2
    # The box behind is lower than the sight line over the front one: no ray sees it.
    assert not (cast.owner == 1).any() and cast.rays_on_object[1] > 0
    # The ground is hit right in front of the box, at z = -1.73.
    ground_pts = dirs[cast.owner == GROUND] * cast.distance[cast.owner == GROUND][:, None]
    np.testing.assert_allclose(ground_pts[:, 2], ground, atol=1e-9)


def test_labels_follow_kittis_definitions_for_hand_placed_objects():
    cfg = SceneConfig()
    calib = default_calibration()
    ground = -cfg.lidar.height
    boxes = np.array(
        [
            [20.0, 0.0, ground, 4.0, 1.6, 1.5, 0.0],  # straight ahead, heading away from the sensor
            [8.0, 6.0, ground, 4.0, 1.6, 1.5, math.pi / 2],  # at the left image edge, across the road
            [-10.0, 0.0, ground, 4.0, 1.6, 1.5, 0.0],  # behind the camera: not labelled
            [60.0, 0.0, ground, 4.0, 1.6, 1.5, 0.0],  # too few points: DontCare
        ]
    )
    objs = _labels(boxes, ["Car"] * 4, np.array([100, 100, 100, 2]), np.array([0, 1, 0, 3]), calib, cfg)
    assert objs.name.tolist() == ["Car", "Car", "DontCare"]
    ahead, edge = 0, 1
    # Heading along LiDAR +x is rotation_y = -pi/2 in the camera frame; alpha = ry - atan2(x, z).
    assert objs.rotation_y[ahead] == pytest.approx(-math.pi / 2)
    assert objs.alpha[ahead] == pytest.approx(
        -math.pi / 2 - math.atan2(objs.location[ahead, 0], objs.location[ahead, 2])
    )
    np.testing.assert_allclose(objs.location[ahead], [0.0, 1.73 - 0.08, 20.0 - 0.27], atol=1e-9)
    np.testing.assert_allclose(objs.dimensions[ahead], [4.0, 1.5, 1.6])  # l h w
    assert objs.truncated[ahead] == 0.0 and objs.truncated[edge] > 0.1
    assert objs.bbox[edge, 0] == 0.0  # clipped at the image's left edge
    assert objs.occluded.tolist()[:2] == [0, 1]
    assert objs.truncated[2] == -1 and objs.location[2].tolist() == [-1000, -1000, -1000]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    ids = write_synth_kitti(root, num_frames=4, seed=7, images=True)
    return root, ids


def test_written_frames_round_trip_through_the_reader(written):
    root, ids = written
    assert read_split(root / "ImageSets" / "train.txt") == ids[:2]
    assert read_split(root / "ImageSets" / "val.txt") == ids[2:]
    frames = KittiReader(root).frames()
    assert [f.frame_id for f in frames] == ids
    for i, frame in enumerate(frames):
        scene = generate_scene(7, i)
        np.testing.assert_array_equal(frame.points, scene.points)
        np.testing.assert_allclose(frame.calib.velo_to_rect, scene.calib.velo_to_rect, atol=1e-12)
        objs = frame.objects
        assert objs is not None and objs.name.tolist() == scene.objects.name.tolist()
        np.testing.assert_allclose(objs.location, scene.objects.location, atol=0.005 + 1e-9)
        np.testing.assert_allclose(objs.rotation_y, scene.objects.rotation_y, atol=0.005 + 1e-9)
        real = objs.name != "DontCare"
        assert set(objs.occluded[real].tolist()) <= {0, 1, 2, 3}
        assert np.all((objs.truncated[real] >= 0) & (objs.truncated[real] <= 1))
        assert frame.image_shape == (375, 1242) and frame.image_path is not None
        np.testing.assert_array_equal(np.asarray(Image.open(frame.image_path)), camera_image(scene))


def test_camera_image_draws_each_pixels_nearest_point_where_p2_projects_it():
    scene = generate_scene(7, 0)
    calib = scene.calib
    p2 = calib.P[2][:3]  # (3, 4)
    centre = -np.linalg.solve(p2[:, :3], p2[:, 3])  # camera 2's centre: P2 (centre, 1) = 0
    along = centre + np.array([[0.1, 0.05, 1.0]]) * np.array([[10.0], [20.0], [-5.0]])  # one ray, both ways
    ray = calib.camera_to_lidar(along)
    points = np.concatenate([ray, np.zeros((3, 1))], 1).astype(np.float32)
    image = camera_image(replace(scene, points=points[[1, 0, 2]]), max_depth=80.0)  # the far one first
    u, v = np.floor(
        calib.camera_to_image(calib.lidar_to_camera(points[:1, :3].astype(np.float64)))[0]
    ).astype(int)
    assert (image.reshape(-1, 3).any(1)).sum() == 1  # one lit pixel: both points on one ray, one behind
    depth = calib.lidar_to_camera(points[:1, :3].astype(np.float64))[0, 2]  # about 10 m
    near = (np.array(colormaps["turbo"](1.0 - depth / 80.0)[:3]) * 255).round()
    np.testing.assert_array_equal(image[v, u], near)


def test_labelled_boxes_contain_their_points(written):
    root, _ = written
    seen = 0
    for frame in KittiReader(root).frames():
        objs = frame.objects
        assert objs is not None
        real = objs.name != "DontCare"
        boxes = boxes_camera_to_lidar(objs, frame.calib)[real]
        counts = points_in_boxes(frame.points, boxes).sum(0)
        # Every label has at least min_points (5) points; the 2-decimal rounding may move a couple.
        assert np.all(counts >= 3), counts
        # Nothing stands on or floats above an object: the same box lifted clear of its top
        # (by more than the range noise and the label's rounding) holds no point.
        lifted = boxes.copy()
        lifted[:, 2] += lifted[:, 5] + 0.15
        assert points_in_boxes(frame.points, lifted).sum() == 0
        seen += int(real.sum())
        assert set(difficulty(objs)[real].tolist()) <= {-1, 0, 1, 2}
    assert seen >= 8


def test_scenes_are_deterministic_plausible_and_vary():
    a, b, c = generate_scene(3, 1), generate_scene(3, 1), generate_scene(3, 2)
    np.testing.assert_array_equal(a.points, b.points)
    assert a.points.shape != c.points.shape or not np.array_equal(a.points, c.points)
    pts = a.points
    assert 60_000 < len(pts) < 120_000  # a 64-beam sweep, as KITTI's ~120k minus sky and dropout
    assert np.percentile(pts[:, 2], 5) == pytest.approx(-1.73, abs=0.1)  # most low points are ground
    assert np.all((pts[:, 3] >= 0) & (pts[:, 3] <= 0.99))
    # Range noise: ground points scatter about the plane by about range_noise * |sin(elevation)|.
    assert np.linalg.norm(pts[:, :3], axis=1).max() <= 120.0 + 0.2


def test_bad_configs_fail_with_one_line():
    with pytest.raises(ConfigError, match="cars must be a range"):
        SceneConfig(cars=(3, 1))
    with pytest.raises(ConfigError, match="x_range must start"):
        SceneConfig(x_range=(0.5, 10.0))
    with pytest.raises(ConfigError, match="num_frames >= 1"):
        write_synth_kitti("/tmp/unused", num_frames=0)
