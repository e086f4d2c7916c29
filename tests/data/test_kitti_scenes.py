"""The synth-kitti datamodule: reduction, targets, augmentation geometry, detections back to KITTI."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from attnlab.data.kitti import points_in_boxes
from attnlab.data.kitti_scenes import (
    Augment,
    SynthKittiData,
    augment,
    collate_scenes,
    detections_to_kitti,
    in_view,
)
from attnlab.data.synth_kitti import write_synth_kitti
from attnlab.errors import ConfigError


@pytest.fixture(scope="module")
def scene():
    return SynthKittiData(seed=0, val_size=2).dataset("val")[0]


def test_scenes_are_reduced_to_the_view_and_range_and_deterministic(scene):
    pts = scene.points.numpy()
    assert in_view(pts[:, :3], scene.calib, (375, 1242)).all()
    assert (pts[:, 0] >= 0).all() and (pts[:, 0] < 38.4).all() and (np.abs(pts[:, 1]) <= 19.2).all()
    assert len(scene.boxes) == len(scene.labels) > 0
    assert (scene.boxes[:, 0] < 38.4).all() and (scene.boxes[:, 1].abs() < 19.2).all()
    again = SynthKittiData(seed=0, val_size=2).dataset("val")[0]
    assert torch.equal(again.points, scene.points) and torch.equal(again.boxes, scene.boxes)
    other = SynthKittiData(seed=1, val_size=2).dataset("val")[0]
    assert not torch.equal(other.points[:100], scene.points[:100])


def test_evaluation_labels_drop_only_classified_objects_out_of_range():
    data = SynthKittiData(seed=0, val_size=4, point_range=(0.0, -10.0, -3.0, 20.0, 10.0, 1.0))
    for i in range(4):
        s = data.dataset("val")[i]
        classified = np.isin(s.objects.name, ("Car", "Pedestrian", "Cyclist"))
        assert classified.sum() == len(s.boxes)  # every evaluated object is a target, and vice versa
        loc = s.objects.location[classified]  # camera frame: lidar x = z_c + 0.27, y = -x_c
        assert (loc[:, 2] < 20.0).all()


def test_augmentation_keeps_every_point_in_its_box(scene):
    before = points_in_boxes(scene.points.numpy(), scene.boxes.double().numpy()).sum(0)
    for seed in range(4):
        aug = augment(
            scene,
            Augment(flip=True, rotation=math.pi / 4, scale=(0.9, 1.1)),
            torch.Generator().manual_seed(seed),
        )
        after = points_in_boxes(aug.points.numpy(), aug.boxes.double().numpy()).sum(0)
        np.testing.assert_array_equal(before, after)
        assert not torch.equal(aug.points, scene.points)
    flip = augment(
        scene, Augment(flip=True, rotation=0.0, scale=(1.0, 1.0)), torch.Generator().manual_seed(1)
    )
    if not torch.equal(flip.points, scene.points):  # this seed flips
        torch.testing.assert_close(flip.boxes[:, 6], math.pi - scene.boxes[:, 6])


def test_training_stream_permutes_and_augments_every_pass():
    data = SynthKittiData(seed=0, train_size=3)
    train = data.dataset("train")
    assert train.procedural
    first = sorted(train[i].index for i in range(3))
    second = sorted(train[i].index for i in range(3, 6))
    assert first == second == [0, 1, 2]
    same = next(i for i in range(3, 6) if train[i].index == train[0].index)
    assert not torch.equal(train[0].points, train[same].points)  # the same scene, augmented anew
    batch = collate_scenes([train[0], train[1]])
    assert batch.batch_size == 2 and batch.index.shape == (2,)


def test_ground_truth_as_detections_gives_back_the_labels(scene):
    dets = detections_to_kitti(
        scene.boxes.double().numpy(), np.ones(len(scene.boxes)), scene.labels.numpy(), scene.calib
    )
    gt = scene.objects
    keep = np.isin(gt.name, ("Car", "Pedestrian", "Cyclist"))
    assert len(dets) == keep.sum()
    np.testing.assert_allclose(dets.location, gt.location[keep], atol=1e-5)
    np.testing.assert_allclose(dets.dimensions, gt.dimensions[keep], atol=1e-5)
    np.testing.assert_allclose(np.cos(dets.rotation_y - gt.rotation_y[keep]), 1.0, atol=1e-9)
    np.testing.assert_allclose(np.cos(dets.alpha - gt.alpha[keep]), 1.0, atol=1e-6)
    inside = gt.truncated[keep] < 0.01  # boxes wholly in the image: the clipped projection is the label's
    np.testing.assert_allclose(dets.bbox[inside], gt.bbox[keep][inside], atol=1.0)


def test_a_real_kitti_root_is_read_through_its_split_lists(tmp_path: Path):
    write_synth_kitti(tmp_path, num_frames=4, seed=3)
    data = SynthKittiData(seed=0, root=str(tmp_path))
    assert len(data.dataset("val")) == 2 and len(data.dataset("test")) == 2
    assert data.dataset("val")[0].points.shape[1] == 4


def test_bad_configs_are_one_line_errors():
    with pytest.raises(ConfigError, match="must be >= 1"):
        SynthKittiData(seed=0, val_size=0)
    with pytest.raises(ConfigError, match="x1 > x0"):
        SynthKittiData(seed=0, point_range=(10.0, -1.0, -3.0, 0.0, 1.0, 1.0))
