"""The V-JEPA task: lr / weight-decay schedules per optimiser step, the EMA update after every
step with the scheduled momentum, and the recipe end to end (probes and their floor in
metrics.json and the report) on Moving Fashion-MNIST made from IDX files the test writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch

from attnlab.cli import main
from attnlab.data.clip_augment import ClipAugment, augment_clips
from attnlab.data.moving_fmnist import MovingFashionMNISTData
from attnlab.errors import ConfigError
from attnlab.models import create_model
from attnlab.runs.config import OptimConfig
from attnlab.train.vjepa import EVAL_MASK_SEED, VJEPATask
from tests.data.test_idx import fake_mnist
from tests.train.conftest import assert_same_final_run, attnlab, kill_9_after_first_checkpoint


class Recorder(L.Callback):
    """Per optimiser step k: the target before the step, then after it the encoder, the target and
    the lr and weight decays the scheduler (stepped right after the optimiser) set for step k + 1;
    ``first``: the lr and weight decays of step 1."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self.first: dict[str, list[float]] = {}
        self._before: list[torch.Tensor] = []

    def on_train_start(self, trainer: L.Trainer, task: L.LightningModule) -> None:
        groups = trainer.optimizers[0].param_groups
        self.first = {"lr": [g["lr"] for g in groups], "wd": [g["weight_decay"] for g in groups]}

    def on_before_optimizer_step(self, trainer: L.Trainer, task: L.LightningModule, optimizer: Any) -> None:
        self._before = [p.detach().clone() for p in task.model.target_encoder.parameters()]

    def on_train_batch_end(self, trainer: L.Trainer, task: L.LightningModule, *args: Any) -> None:
        opt = trainer.optimizers[0]
        self.steps.append(
            {
                "step": trainer.global_step,
                "lr": [g["lr"] for g in opt.param_groups],
                "wd": [g["weight_decay"] for g in opt.param_groups],
                "encoder": [p.detach().clone() for p in task.model.encoder.parameters()],
                "before": self._before,
                "after": [p.detach().clone() for p in task.model.target_encoder.parameters()],
            }
        )


def small_task(**task_args: Any) -> VJEPATask:
    model = create_model("vjepa-tiny-mfmnist", depth=1, pred_depth=1, dim=32, pred_dim=16)
    optim = OptimConfig(name="adamw", lr=1e-3, weight_decay=0.04, warmup_steps=2)
    return VJEPATask(model=model, optim=optim, **task_args)


def test_schedules_and_ema_after_every_optimiser_step(tmp_path: Path):
    fake_mnist(tmp_path, n_train=40, n_test=8)
    data = MovingFashionMNISTData(seed=0, root=str(tmp_path), val_items=8, batch_size=2)
    task, recorder = small_task(), Recorder()
    trainer = L.Trainer(
        max_steps=4, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, callbacks=[recorder],
    )  # fmt: skip
    trainer.fit(task, datamodule=data)
    schedules = task.schedules()
    assert len(recorder.steps) == 4
    assert recorder.first["lr"] == [schedules.lr_at(1)] * 4
    assert recorder.first["wd"] == [schedules.weight_decay_at(1)] * 2 + [0.0, 0.0]  # decayed, then exempt
    for i, seen in enumerate(recorder.steps):
        k = seen["step"]
        assert k == i + 1
        assert seen["lr"] == [schedules.lr_at(k + 1)] * 4
        assert seen["wd"] == [schedules.weight_decay_at(k + 1)] * 2 + [0.0, 0.0]
        m = schedules.momentum_at(k)
        for before, online, after in zip(seen["before"], seen["encoder"], seen["after"], strict=True):
            assert torch.equal(after, before * m + (1.0 - m) * online)
    assert schedules.lr_at(1) == pytest.approx(2e-4 + 0.5 * (1e-3 - 2e-4))
    assert not torch.equal(recorder.steps[-1]["after"][0], recorder.steps[0]["before"][0])  # it moved
    assert all(p.grad is None for p in task.model.target_encoder.parameters())


def test_task_settings_are_checked():
    with pytest.raises(ConfigError, match="one AdamW"):
        VJEPATask(model=create_model("vjepa-small-reference"), optim=OptimConfig(name="sgd"))
    with pytest.raises(ConfigError, match="V-JEPA model"):
        VJEPATask(model=create_model("vit-tiny-fashion"), optim=OptimConfig())
    with pytest.raises(ConfigError, match="names 0 mask types"):
        small_task(masks=[])
    with pytest.raises(ConfigError, match="3 mask types"):
        small_task(masks=[{}, {}, {}])
    with pytest.raises(ConfigError, match=r"unknown task.masks\[0\] key 'num_block'"):
        small_task(masks=[{"num_block": 2}])
    with pytest.raises(ConfigError, match=r"ctx_content_cov_coeff >= 0, got 1\.0, 0\.0, 0\.0, -1, 0\.0, 0"):
        small_task(ctx_cov_coeff=-1)
    with pytest.raises(ConfigError, match=r"got 1\.0, 0\.0, 0\.0, 0\.0, -0\.5, 0\.0$"):
        small_task(ctx_content_std_coeff=-0.5)
    with pytest.raises(ConfigError, match=r"unknown task.augment key 'flip'"):
        small_task(augment={"flip": 0.5})
    with pytest.raises(ConfigError, match=r"task.augment.scale must be"):
        small_task(augment={"scale": [0.5, 2.0]})


def test_augmentation_crops_the_training_clips_from_the_step_seed(monkeypatch: pytest.MonkeyPatch):
    clips = torch.randn(2, 1, 8, 48, 48)
    plain, augmented = small_task(), small_task(augment={"scale": [0.3, 0.5]})
    seen: list[torch.Tensor] = []
    for task in (plain, augmented):
        record = lambda x, *masks, f=task.vjepa.forward: seen.append(x) or f(x, *masks)
        monkeypatch.setattr(task.vjepa, "forward", record)

    def step(task: VJEPATask) -> torch.Tensor:
        torch.manual_seed(3)  # what the engine's per-step seeding does before each step
        return task.loss_terms({"input": clips})["jepa"]

    step(plain), step(augmented), step(augmented)
    assert torch.equal(seen[0], clips)  # off by default: the clips as they come
    torch.manual_seed(3)
    generator = torch.Generator().manual_seed(int(torch.randint(2**31 - 1, ())))
    expected = augment_clips(clips, ClipAugment(scale=(0.3, 0.5)), generator)
    assert torch.equal(seen[1], expected) and torch.equal(seen[2], expected)
    assert not torch.equal(seen[1], clips)


def numpy_effective_rank(tokens: torch.Tensor) -> float:
    x = tokens.detach().flatten(0, 1).double().numpy()  # (B * tokens, D)
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    p = s / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def test_validation_reports_the_effective_rank_of_target_and_context_tokens():
    task = small_task()
    task.trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    clips = torch.randn(3, 1, 8, 48, 48)
    values = task.metrics({"input": clips})
    torch.manual_seed(EVAL_MASK_SEED)  # the validation masks
    out, _ = task._forward(clips, 0)
    assert float(values["target_rank"]) == pytest.approx(numpy_effective_rank(out.target), rel=1e-6)
    assert float(values["context_rank"]) == pytest.approx(numpy_effective_rank(out.context[0]), rel=1e-6)
    assert 1 < float(values["target_rank"]) <= out.target.shape[-1]


def test_recipe_end_to_end_with_probes_and_floor(tmp_path: Path):
    root = tmp_path / "fmnist"
    root.mkdir()
    fake_mnist(root, n_train=60, n_test=20)
    run = tmp_path / "run"
    args = ["run", "vjepa-moving_fmnist", "--run-dir", str(run), "--data.root", str(root)]
    args += [
        "--data.val_items",
        "10",
        "--data.val_size",
        "4",
        "--data.test_size",
        "8",
        "--data.probe_size",
        "16",
    ]
    args += ["--data.batch_size", "4", "--data.eval_batch_size", "8", "--task.probe.steps", "3"]
    args += ["--trainer.max_steps", "3", "--trainer.val_every", "3", "--trainer.progress_bar", "false"]
    args += ["--model.depth", "1", "--optim.warmup_steps", "1"]
    assert main(args) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    for encoder in ("probe", "floor"):
        for kind in ("attentive", "average"):
            for label in ("appearance", "motion"):
                assert 0.0 <= metrics[f"test/{encoder}/{kind}/{label}_acc"] <= 1.0
    assert 1.0 <= metrics["test/target_rank"] <= 96  # the recipe's width
    report = (run / "report.md").read_text()
    assert "test/floor/attentive/motion_acc" in report and (run / "figures/probe_attention.png").is_file()
    assert (run / "figures/pca.png").is_file() and "principal components" in report


def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path: Path):
    """Masks, schedules and the EMA target all continue exactly: bit-identical final weights."""
    root = tmp_path / "fmnist"
    root.mkdir()
    fake_mnist(root, n_train=60, n_test=20)
    args = ["run", "vjepa-moving_fmnist", "--data.root", str(root), "--data.val_items", "10"]
    args += [
        "--data.val_size",
        "4",
        "--data.test_size",
        "8",
        "--data.probe_size",
        "16",
        "--data.batch_size",
        "4",
    ]
    args += ["--data.eval_batch_size", "8", "--task.probe.steps", "3", "--optim.warmup_steps", "5"]
    args += ["--model.depth", "1", "--model.dim", "32", "--model.pred_dim", "16", "--model.pred_depth", "1"]
    args += ["--trainer.max_steps", "60", "--trainer.checkpoint_every", "5", "--trainer.val_every", "60"]
    args += ["--trainer.progress_bar", "false"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    done = attnlab(*args, "--run-dir", str(full))
    assert done.returncode == 0, done.stderr
    kill_9_after_first_checkpoint(args, killed)
    resumed = attnlab("resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    assert_same_final_run(full, killed)
