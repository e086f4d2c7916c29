"""The MAE task: fresh masks every step, fixed ones in evaluation; the recipe end to end with its
k-NN floor and reconstruction figure; kill -9 + resume bit-identical (the masks are drawn from the
per-step seeded RNG), on Fashion-MNIST-shaped IDX files the test writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from attnlab.cli import main
from attnlab.errors import ConfigError
from attnlab.models import create_model
from attnlab.models.vit.mae import MAE
from attnlab.runs.config import OptimConfig
from attnlab.train.mae import MAETask, reconstruction_images
from tests.data.test_idx import fake_mnist
from tests.train.conftest import assert_same_final_run, attnlab, kill_9_after_first_checkpoint

SMALL = ["--model.dim", "32", "--model.depth", "1", "--model.num_heads", "2", "--model.decoder_dim", "16"]
SMALL += ["--model.decoder_depth", "1", "--model.decoder_num_heads", "2", "--data.val_size", "8"]
SMALL += ["--data.knn_size", "16", "--data.batch_size", "4", "--data.eval_batch_size", "8"]
SMALL += ["--trainer.progress_bar", "false", "--optim.warmup_steps", "2"]


def test_task_settings_are_checked():
    with pytest.raises(ConfigError, match="MAE model"):
        MAETask(model=create_model("dino-vit-p4"), optim=OptimConfig())
    with pytest.raises(ConfigError, match="mask_ratio"):
        MAETask(model=create_model("mae-vit-tiny-p4"), optim=OptimConfig(), mask_ratio=1.0)


def test_reconstruction_keeps_visible_patches_and_fills_removed_ones():
    torch.manual_seed(0)
    model = create_model("mae-vit-tiny-p4")
    assert isinstance(model, MAE)
    images = torch.randn(2, 1, 28, 28)
    out = model(images)
    masked, recon = reconstruction_images(model, images, out)
    visible = out.mask == 0  # (B, L)
    patch = torch.nn.functional.unfold(images, 4, stride=4).transpose(1, 2)  # (B, L, 16)
    rec = torch.nn.functional.unfold(recon, 4, stride=4).transpose(1, 2)
    assert torch.allclose(rec[visible], patch[visible])
    assert not torch.allclose(rec[~visible], patch[~visible])
    assert masked.shape == recon.shape == images.shape


def test_recipe_end_to_end_with_knn_floor_and_reconstructions(tmp_path: Path):
    root = tmp_path / "fmnist"
    root.mkdir()
    fake_mnist(root, n_train=60, n_test=16)
    run = tmp_path / "run"
    args = ["run", "mae-fmnist", "--run-dir", str(run), "--data.root", str(root), *SMALL]
    args += ["--trainer.max_steps", "4", "--trainer.val_every", "4"]
    assert main(args) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["test/knn_acc"] <= 1.0 and 0.0 <= metrics["test/knn_acc_random_init"] <= 1.0
    assert (run / "figures/reconstructions.png").is_file()
    assert "knn_acc_random_init" in (run / "report.md").read_text()


def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path: Path):
    root = tmp_path / "fmnist"
    root.mkdir()
    fake_mnist(root, n_train=60, n_test=16)
    args = ["run", "mae-fmnist", "--data.root", str(root), *SMALL]
    args += ["--trainer.max_steps", "60", "--trainer.checkpoint_every", "5", "--trainer.val_every", "60"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    done = attnlab(*args, "--run-dir", str(full))
    assert done.returncode == 0, done.stderr
    kill_9_after_first_checkpoint(args, killed)
    resumed = attnlab("resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    assert_same_final_run(full, killed)
