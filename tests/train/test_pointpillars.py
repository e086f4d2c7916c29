"""The PointPillars recipe through the real command: a few steps on tiny generated data."""

from pathlib import Path

import pytest

from attnlab.cli import main
from tests.train.conftest import metrics_of

TINY = ["--data.train_size", "4", "--data.val_size", "2", "--data.test_size", "2",
        "--data.batch_size", "2", "--data.eval_batch_size", "2",
        "--trainer.progress_bar", "false", "--trainer.log_every", "1"]  # fmt: skip


def test_a_few_steps_train_and_report_kitti_ap_with_its_floor(tmp_path: Path):
    run_dir = tmp_path / "pp"
    args = ["--trainer.max_steps", "3", "--trainer.val_every", "3", "--trainer.checkpoint_every", "3"]
    assert main(["run", "pointpillars-synthkitti", "--run-dir", str(run_dir), *args, *TINY]) == 0
    m = metrics_of(run_dir)
    for key in ("loss", "cls", "box", "dir", "map_bev", "map_3d", "floor/map_bev", "floor_all_boxes/map_bev"):
        assert f"test/{key}" in m, key
    for cls in ("Car", "Pedestrian", "Cyclist"):
        for metric in ("ap_bev", "ap_3d", "ap_bbox", "aos"):
            assert 0.0 <= m[f"test/{metric}/{cls}"] <= 100.0
            assert f"test/floor/{metric}/{cls}" in m and f"test/floor_all_boxes/{metric}/{cls}" in m
    assert (run_dir / "figures/bev_detections.png").is_file()
    assert (run_dir / "model.safetensors").is_file()


def test_data_and_model_ranges_must_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    wrong = ["--data.point_range", "[0, -10, -3, 20, 10, 1]"]
    code = main(["run", "pointpillars-synthkitti", "--run-dir", str(tmp_path / "r"),
                 "--trainer.max_steps", "1", *wrong, *TINY])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and "data.point_range must equal the model's pillar range" in err
    assert "Traceback" not in err
