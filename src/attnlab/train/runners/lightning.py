"""``runner: lightning``: Lightning's fit loop over a registered task and datamodule."""

from __future__ import annotations

import logging
import os
import signal
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from attnlab.data.datamodule import DataModule
from attnlab.errors import RunDirError
from attnlab.runs import rundir
from attnlab.runs.checkpoint_io import AtomicCheckpointIO, safe_torch_load
from attnlab.runs.rundir import RunDir
from attnlab.runs.runner import Fitted, Runner, Weights, register_runner
from attnlab.runs.spec import RunSpec
from attnlab.runs.tensorboard import drop_steps_from
from attnlab.runs.weights import load_final_weights
from attnlab.state_dicts import check_state_dict
from attnlab.status import is_worker_process, say
from attnlab.train.callbacks import MarkRunning, StepProgressBar, StepSeeding, TrainClockCallback
from attnlab.train.engine import build
from attnlab.train.model_options import prepare_model
from attnlab.train.task import Task


@register_runner("lightning")
class LightningRunner(Runner):
    """Trains ``task(model)`` on ``data`` with a Lightning ``Trainer`` built from ``trainer:``."""

    sections = ("task", "model", "data")

    def fit(self, run: RunDir, spec: RunSpec, *, checkpoint: Path | None) -> Fitted:
        _quiet()
        os.environ[rundir.WORKER_ENV] = str(run.path)  # DDP workers attach to this folder
        task, data = build(spec)
        say(f"model {spec.model_name}: {_parameters(task.model)}; data {spec.data_name}")
        resume_step = 0
        if checkpoint is not None:  # before the trainer writes anything: a config edited since fails here
            loaded = _check_checkpoint(task, checkpoint, f"{checkpoint} (resumed with {run.config})")
            resume_step = int(loaded.get("global_step", 0))
            if not is_worker_process():
                drop_steps_from(run.path / "tb", resume_step)  # each step logged once
        prepare_model(task.model, spec.trainer, resuming=checkpoint is not None)
        clock = TrainClockCallback()
        trainer = _trainer(spec, run, task, clock)
        try:
            trainer.fit(task, datamodule=data, ckpt_path=checkpoint, weights_only=True)
        except SystemExit:  # Lightning's Ctrl-C handler exits 1 after its graceful shutdown
            if not trainer.interrupted:
                raise
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning ignores it from then on
        seconds, segments = clock.clock.seconds, clock.clock.segments
        rank_zero = trainer.is_global_zero
        if trainer.interrupted:
            return Fitted(None, {}, seconds, segments, interrupted=True, writes_run_folder=rank_zero)
        metrics = _test(trainer, task, data)
        figures = task.report_figures(data, run.figures) if rank_zero else {}
        return Fitted(task.model, metrics, seconds, segments, figures=figures, writes_run_folder=rank_zero)

    def evaluate(self, run: RunDir, spec: RunSpec, weights: Weights) -> dict[str, float]:
        _quiet()
        task, data = build(spec)
        _load_weights(task, run, weights)
        trainer = L.Trainer(
            accelerator=spec.trainer.accelerator,
            devices=1,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            precision=spec.trainer.precision,
            limit_test_batches=spec.trainer.limit_test_batches,
        )
        return _test(trainer, task, data)


def _parameters(model: torch.nn.Module) -> str:
    count = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    text = _count(count) + " parameters"
    return text if trainable == count else f"{text} ({_count(trainable)} trainable)"  # frozen sub-models


def _count(count: int) -> str:
    return f"{count / 1e6:.2f} M" if count >= 100_000 else f"{count:,}"


def _quiet() -> None:
    """Lightning's banners and tips are noise in a run's output; its warnings we act on stay."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    for msg in (
        ".*does not have many workers.*",
        ".*Checkpoint directory .* exists and is not empty.*",
        ".*is an invalid batch sampler.*",
        ".*Precision 64-true.*",
        ".*LeafSpec.*is deprecated.*",  # Lightning's own use of a torch API, not ours
        ".*module\\(s\\) in eval mode at the start of training.*",  # frozen sub-models, on purpose
    ):
        warnings.filterwarnings("ignore", message=msg)


def _trainer(spec: RunSpec, run: RunDir, task: Task, clock: TrainClockCallback) -> L.Trainer:
    cfg = spec.trainer
    callbacks: list[L.Callback] = [
        ModelCheckpoint(
            dirpath=run.checkpoints, save_last=True, save_top_k=0, every_n_train_steps=cfg.checkpoint_every
        ),
        ModelCheckpoint(
            dirpath=run.checkpoints,
            filename="best",
            monitor=task.monitor,
            mode=task.monitor_mode,
            save_top_k=1,
            auto_insert_metric_name=False,
            enable_version_counter=False,
        ),
        StepSeeding(spec.seed),
        clock,
        MarkRunning(run),
        LearningRateMonitor(logging_interval="step"),
    ]
    if cfg.progress_bar:
        callbacks.append(StepProgressBar(compiling=cfg.compile))
    torch.use_deterministic_algorithms(cfg.deterministic, warn_only=True)
    return L.Trainer(
        default_root_dir=run.path,
        max_steps=cfg.max_steps,
        val_check_interval=min(cfg.val_every, cfg.max_steps),
        check_val_every_n_epoch=None,
        limit_val_batches=cfg.limit_val_batches,
        limit_test_batches=cfg.limit_test_batches,
        log_every_n_steps=cfg.log_every,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
        precision=cfg.precision,
        accumulate_grad_batches=cfg.accumulate_grad_batches,
        gradient_clip_val=cfg.gradient_clip_val,
        logger=TensorBoardLogger(run.path, name="tb", version="", default_hp_metric=False),
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,  # our sampler shards by rank itself
        num_sanity_val_steps=0,
        enable_model_summary=False,
        enable_progress_bar=cfg.progress_bar,
    )


def _test(trainer: L.Trainer, task: Task, data: DataModule) -> dict[str, float]:
    results = trainer.test(task, datamodule=data, verbose=False)
    return {k: float(v) for k, v in results[0].items()}


def _check_checkpoint(task: Task, path: Path, what: str) -> dict[str, Any]:
    """The checkpoint, if its state dict fits the task's model (one-line InputError otherwise)."""
    loaded = safe_torch_load(path)
    state = loaded.get("state_dict") if isinstance(loaded, dict) else None
    if not isinstance(state, dict):
        raise RunDirError(f"{path} is not a Lightning checkpoint (no state_dict)")
    check_state_dict(task.state_dict(), state, what)
    return dict(loaded)


def _load_weights(task: Task, run: RunDir, weights: Weights) -> None:
    if weights == "final":
        load_final_weights(task.model, run)
        return
    path = run.best_checkpoint if weights == "best" else run.last_checkpoint
    if not path.is_file():
        raise RunDirError(f"{run.path} has no {weights} checkpoint ({path.name})")
    task.load_state_dict(_check_checkpoint(task, path, f"{path} (with {run.config})")["state_dict"])
