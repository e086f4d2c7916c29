"""The run engine behind ``attnlab run / resume / evaluate``."""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from safetensors.torch import load_file, save

from attnlab.catalog import DATAMODULES, TASKS
from attnlab.data.datamodule import DataModule
from attnlab.errors import RunDirError
from attnlab.recipes import recipe_path
from attnlab.runs import rundir
from attnlab.runs.checkpoint_io import AtomicCheckpointIO, atomic_write, safe_torch_load
from attnlab.runs.rundir import RunDir
from attnlab.runs.spec import RunSpec, resolve
from attnlab.train.callbacks import StepProgressBar, StepSeeding
from attnlab.train.composite import attach_submodels, build_model
from attnlab.train.model_options import prepare_model
from attnlab.train.report import write_report
from attnlab.train.task import Task


@dataclass
class Outcome:
    run: RunDir
    metrics: dict[str, float]
    interrupted: bool = False


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
    ):
        warnings.filterwarnings("ignore", message=msg)


def build(spec: RunSpec) -> tuple[Task, DataModule]:
    """The task (with its model, sub-models built: :mod:`attnlab.train.composite`) and the datamodule."""
    L.seed_everything(spec.seed, verbose=False)
    model = build_model(spec.model_name, spec.model_config)
    task = TASKS.get(spec.task_name).cls(model=model, optim=spec.optim, **spec.task_args)
    data = DATAMODULES.get(spec.data_name).cls(seed=spec.seed, **spec.data_args)
    attach_submodels(data)  # models a datamodule runs (clevrer-qa's slot encoder)
    return task, data


def _trainer(spec: RunSpec, run: RunDir, task: Task) -> L.Trainer:
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
        LearningRateMonitor(logging_interval="step"),
    ]
    if cfg.progress_bar:
        callbacks.append(StepProgressBar())
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


def _train(run: RunDir, spec: RunSpec, ckpt: Path | None, title: str) -> Outcome:
    _quiet()
    os.environ[rundir.WORKER_ENV] = str(run.path)  # DDP workers attach to this folder
    task, data = build(spec)
    prepare_model(task.model, spec.trainer, resuming=ckpt is not None)
    trainer = _trainer(spec, run, task)
    start = time.perf_counter()
    trainer.fit(task, datamodule=data, ckpt_path=ckpt, weights_only=True)
    seconds = time.perf_counter() - start + float(run.state().get("train_seconds", 0.0))
    if trainer.interrupted:
        if trainer.is_global_zero:
            run.write_state(train_seconds=seconds)
        return Outcome(run, {}, interrupted=True)
    metrics = _test(trainer, task, data)
    if trainer.is_global_zero:
        atomic_write(run.weights, lambda f: f.write(save(_contiguous(task.model))))
        (run.path / "metrics.json").write_text(json.dumps(metrics, indent=2))
        figures = task.report_figures(data, run.figures)
        state = run.state()
        write_report(
            run,
            title=title,
            description=spec.description,
            command=state.get("command", ""),
            metrics=metrics,
            figures=figures,
            seconds=seconds,
        )
        run.write_state(state="finished", train_seconds=seconds, finished=time.strftime("%Y-%m-%d %H:%M:%S"))
    return Outcome(run, metrics)


def _test(trainer: L.Trainer, task: Task, data: DataModule) -> dict[str, float]:
    results = trainer.test(task, datamodule=data, verbose=False)
    return {k: float(v) for k, v in results[0].items()}


def _contiguous(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}


def run(
    recipe: str, overrides: list[str], *, run_dir: Path | None, command: str, name: str | None = None
) -> Outcome:
    """Train, evaluate and report a recipe in a new run folder; ``name`` titles it (default: the recipe)."""
    spec = resolve(recipe_path(recipe), overrides)
    name = name or recipe
    if rundir.is_worker_process():
        run = rundir.attach_worker(os.environ.get(rundir.WORKER_ENV) or run_dir)
    else:
        run = rundir.create(run_dir or rundir.default_run_path(name, spec.seed))
        atomic_write(run.config, lambda f: f.write(spec.yaml_text.encode()))
        run.write_state(
            state="running", recipe=name, command=command, started=time.strftime("%Y-%m-%d %H:%M:%S")
        )
    return _train(run, spec, None, title=f"{name} — attnlab run")


def resume(run_dir: Path) -> Outcome:
    """Continue an unfinished run from its last checkpoint (from scratch if it has none)."""
    run = rundir.existing(run_dir)
    if run.finished:
        raise RunDirError(f"{run_dir} is finished; nothing to resume (use: attnlab evaluate {run_dir})")
    spec = resolve(run.config, [])
    ckpt = run.last_checkpoint if run.last_checkpoint.exists() else None
    recipe = str(run.state().get("recipe", run_dir.name))
    return _train(run, spec, ckpt, title=f"{recipe} — attnlab run")


def evaluate(run_dir: Path, *, weights: Literal["final", "best", "last"] = "final") -> dict[str, float]:
    """Test a run's weights again; results go to evaluations/<weights>-<time>.json, nothing is overwritten."""
    _quiet()
    run = rundir.existing(run_dir)
    spec = resolve(run.config, [])
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
    metrics = _test(trainer, task, data)
    out = run.path / "evaluations" / f"{weights}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(metrics, indent=2))
    return metrics


def _load_weights(task: Task, run: RunDir, weights: Literal["final", "best", "last"]) -> None:
    if weights == "final":
        if not run.weights.is_file():
            raise RunDirError(f"{run.path} has no final weights (unfinished run?); try --weights last")
        try:
            state = load_file(run.weights)
        except Exception as exc:
            raise RunDirError(f"{run.weights} is corrupt: {exc}") from None
        task.model.load_state_dict(state)
        return
    path = run.best_checkpoint if weights == "best" else run.last_checkpoint
    task.load_state_dict(safe_torch_load(path)["state_dict"])
