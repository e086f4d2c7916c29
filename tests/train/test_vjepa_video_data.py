"""The vjepa task on data other than Moving Fashion-MNIST: a folder of mp4 files the test writes
(one ``label`` head, several clips and crops per test video, still-frame probes) run through the
command line, and the evaluation options on moving-fmnist."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attnlab.cli import main
from tests.data.test_idx import fake_mnist
from tests.data.test_video_folder import write_mp4


@pytest.mark.parametrize("across", ["false", "true"])
def test_video_folder_run_with_views_and_image_probes(tmp_path: Path, across: str):
    for i in range(8):
        write_mp4(tmp_path / f"v{i}.mp4", num_frames=12, height=48, width=64)
    (tmp_path / "train.csv").write_text("".join(f"v{i}.mp4 {i % 2}\n" for i in range(6)))
    (tmp_path / "test.csv").write_text("v6.mp4,0\nv7.mp4,1\n")
    recipe = tmp_path / "videos.yaml"
    recipe.write_text(
        f"""description: V-JEPA on a folder of videos
seed: 0
task:
  name: vjepa
  probe:
    steps: 3
    num_views: 3
    view_shift: 4
    average: logits
    image_frame: 0
    attend_across_segments: {across}
model: {{name: vjepa-tiny-mfmnist, in_chans: 3, depth: 1, dim: 32, pred_dim: 16, pred_depth: 1}}
data:
  name: video-folder
  train_csv: {tmp_path / "train.csv"}
  test_csv: {tmp_path / "test.csv"}
  val_fraction: 0.2
  frames_per_clip: 8
  frame_step: 1
  size: 48
  num_clips: 2
  num_views: 2
  batch_size: 2
  eval_batch_size: 2
optim: {{name: adamw, lr: 1.0e-3, weight_decay: 0.04, warmup_steps: 1}}
trainer: {{max_steps: 2, val_every: 2, progress_bar: false}}
"""
    )
    run = tmp_path / "run"
    assert main(["run", str(recipe), "--run-dir", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    for encoder in ("probe", "floor"):
        for kind in ("attentive", "average", "image-attentive", "image-average"):
            value = metrics[f"test/{encoder}/{kind}/label_acc"]
            assert value in (0.0, 0.5, 1.0)  # two test videos
    assert not any("appearance" in k or "motion" in k for k in metrics)
    assert (run / "figures/pca.png").is_file() and (run / "figures/probe_attention.png").is_file()
    assert "Attentive label probe" in (run / "report.md").read_text()  # the one label's probe


def test_moving_fmnist_probes_with_views_and_still_frames(tmp_path: Path):
    root = tmp_path / "fmnist"
    root.mkdir()
    fake_mnist(root, n_train=60, n_test=20)
    run = tmp_path / "run"
    args = ["run", "vjepa-moving_fmnist", "--run-dir", str(run), "--data.root", str(root)]
    args += ["--data.val_items", "10", "--data.val_size", "4", "--data.test_size", "8"]
    args += ["--data.probe_size", "16", "--data.batch_size", "4", "--data.eval_batch_size", "8"]
    args += ["--task.probe.steps", "3", "--task.probe.num_views", "3", "--task.probe.image_frame", "4"]
    args += ["--trainer.max_steps", "2", "--trainer.val_every", "2", "--trainer.progress_bar", "false"]
    args += ["--model.depth", "1", "--optim.warmup_steps", "1"]
    assert main(args) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    for kind in ("attentive", "average", "image-attentive", "image-average"):
        for label in ("appearance", "motion"):
            accuracy = metrics[f"test/probe/{kind}/{label}_acc"]
            assert np.isclose(accuracy * 8, round(accuracy * 8))  # a share of the 8 test clips
