"""The DINO task: lr / weight decay per iteration, the teacher's EMA after every optimiser step with
the scheduled momentum and no gradient, the last layer frozen in the first epoch, the centre moving
only in training; the recipe end to end with its k-NN floor, and kill -9 + resume bit-identical
(the centre and the schedules resume too), on Fashion-MNIST-shaped IDX files the test writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from attnlab.cli import main
from attnlab.data.ssl_images import FashionMNISTViews
from attnlab.errors import ConfigError
from attnlab.models import create_model
from attnlab.runs.config import OptimConfig
from attnlab.train.dino import DINOTask
from tests.data.test_idx import fake_mnist
from tests.train.conftest import assert_same_final_run, attnlab, kill_9_after_first_checkpoint

SMALL_MODEL = dict(dim=32, depth=1, num_heads=2, out_dim=64, head_hidden_dim=32, bottleneck_dim=16)
SMALL_ARGS = ["--model.dim", "32", "--model.depth", "1", "--model.num_heads", "2", "--model.out_dim", "64"]
SMALL_ARGS += ["--model.head_hidden_dim", "32", "--model.bottleneck_dim", "16"]
SMALL_DATA = ["--data.val_size", "8", "--data.knn_size", "16", "--data.batch_size", "4"]
SMALL_DATA += ["--data.eval_batch_size", "8", "--data.local_crops", "2", "--trainer.progress_bar", "false"]


class Recorder(L.Callback):
    """Per iteration: the teacher before the step; after it the student, the teacher, the lr and
    weight decays set for the next iteration, the last layer and the centre."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self.first: dict[str, list[float]] = {}
        self._before: list[torch.Tensor] = []
        self.center0: torch.Tensor | None = None

    def on_train_start(self, trainer: L.Trainer, task: Any) -> None:
        groups = trainer.optimizers[0].param_groups
        self.first = {"lr": [g["lr"] for g in groups], "wd": [g["weight_decay"] for g in groups]}
        self.last0 = task.model.student.head.last_layer.weight_v.detach().clone()

    def on_before_optimizer_step(self, trainer: L.Trainer, task: Any, optimizer: Any) -> None:
        self._before = [p.detach().clone() for p in task.model.teacher.parameters()]

    def on_train_batch_end(self, trainer: L.Trainer, task: Any, *args: Any) -> None:
        opt = trainer.optimizers[0]
        self.steps.append(
            {
                "step": trainer.global_step,
                "lr": [g["lr"] for g in opt.param_groups],
                "wd": [g["weight_decay"] for g in opt.param_groups],
                "student": [p.detach().clone() for p in task.model.student.parameters()],
                "before": self._before,
                "after": [p.detach().clone() for p in task.model.teacher.parameters()],
                "last": task.model.student.head.last_layer.weight_v.detach().clone(),
                "center": task.center.clone(),
            }
        )


def small_task(**task_args: Any) -> DINOTask:
    model = create_model("dino-vit-p4", **SMALL_MODEL)
    optim = OptimConfig(name="adamw", lr=1e-2, weight_decay=0.04)
    return DINOTask(model=model, optim=optim, **task_args)


def test_schedules_ema_freeze_and_centre_per_iteration(tmp_path: Path):
    fake_mnist(tmp_path, n_train=40, n_test=8)
    data = FashionMNISTViews(seed=0, root=str(tmp_path), val_size=8, knn_size=8, batch_size=4, local_crops=2)
    task, recorder = small_task(epoch_steps=2, warmup_epochs=1, freeze_last_layer=1), Recorder()
    trainer = L.Trainer(
        max_steps=4, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, callbacks=[recorder],
    )  # fmt: skip
    trainer.fit(task, datamodule=data)
    s = task.schedules
    assert (s.epochs, s.iters_per_epoch, s.batch_size) == (2, 2, 4)
    assert recorder.first["lr"] == [s.lr_at(0)] * 2 and s.lr_at(0) == 0.0  # warm-up from 0, as official
    assert recorder.first["wd"] == [s.weight_decay_at(0), 0.0]  # decayed weights, then exempt
    for i, seen in enumerate(recorder.steps):
        it = seen["step"] - 1  # the iteration that just ran
        assert it == i
        assert seen["lr"] == [s.lr_at(min(it + 1, 3))] * 2
        assert seen["wd"] == [s.weight_decay_at(min(it + 1, 3)), 0.0]
        m = s.momentum_at(it)
        for before, online, after in zip(seen["before"], seen["student"], seen["after"], strict=True):
            assert torch.equal(after, before * m + (1.0 - m) * online)
    # the last layer is frozen during epoch 0 (iterations 0 and 1), trained after
    assert torch.equal(recorder.steps[1]["last"], recorder.last0)
    assert not torch.equal(recorder.steps[3]["last"], recorder.last0)
    assert not torch.equal(recorder.steps[0]["center"], recorder.steps[1]["center"])
    assert all(p.grad is None for p in task.model.teacher.parameters())
    assert s.lr_at(1) == pytest.approx(1e-2 * 4 / 256)  # the peak after 1 warm-up epoch of 2 steps


def test_evaluation_leaves_the_centre_alone(tmp_path: Path):
    fake_mnist(tmp_path, n_train=40, n_test=8)
    data = FashionMNISTViews(seed=0, root=str(tmp_path), val_size=8, knn_size=8, batch_size=4, local_crops=2)
    task = small_task(epoch_steps=2)
    trainer = L.Trainer(
        max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(task, datamodule=data)
    center = task.center.clone()
    metrics = trainer.test(task, datamodule=data, verbose=False)[0]
    assert torch.equal(task.center, center)
    assert 0.0 <= metrics["test/knn_acc"] <= 1.0 and 0.0 <= metrics["test/knn_acc_random_init"] <= 1.0


def test_task_settings_are_checked():
    with pytest.raises(ConfigError, match="one AdamW"):
        DINOTask(model=create_model("dino-vit-p4", **SMALL_MODEL), optim=OptimConfig(name="sgd"))
    with pytest.raises(ConfigError, match="DINO model"):
        DINOTask(model=create_model("mae-vit-tiny-p4"), optim=OptimConfig())
    with pytest.raises(ConfigError, match="epoch_steps must be >= 1"):
        small_task(epoch_steps=0)
    with pytest.raises(ConfigError, match=r"unknown task.knn key 'kk'"):
        small_task(knn={"kk": 3})


def test_recipe_end_to_end_with_knn_floor_and_attention_figure(tmp_path: Path):
    root = tmp_path / "fmnist"
    root.mkdir()
    fake_mnist(root, n_train=60, n_test=16)
    run = tmp_path / "run"
    args = ["run", "dino-fmnist", "--run-dir", str(run), "--data.root", str(root), *SMALL_DATA, *SMALL_ARGS]
    args += ["--trainer.max_steps", "4", "--trainer.val_every", "4", "--task.epoch_steps", "2"]
    assert main(args) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["test/knn_acc"] <= 1.0 and 0.0 <= metrics["test/knn_acc_random_init"] <= 1.0
    report = (run / "report.md").read_text()
    assert "knn_acc_random_init" in report and (run / "figures/cls_attention.png").is_file()


def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path: Path):
    """Crops, schedules, the centre and the EMA teacher all continue exactly."""
    root = tmp_path / "fmnist"
    root.mkdir()
    fake_mnist(root, n_train=60, n_test=16)
    args = ["run", "dino-fmnist", "--data.root", str(root), *SMALL_DATA, *SMALL_ARGS]
    args += ["--trainer.max_steps", "40", "--trainer.checkpoint_every", "5", "--trainer.val_every", "40"]
    args += ["--task.epoch_steps", "10"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    done = attnlab(*args, "--run-dir", str(full))
    assert done.returncode == 0, done.stderr
    kill_9_after_first_checkpoint(args, killed)
    resumed = attnlab("resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    assert_same_final_run(full, killed)
