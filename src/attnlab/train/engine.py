"""The run engine behind ``attnlab run / resume / evaluate``.

It resolves the recipe, looks up the runner the recipe names (``runner:``, default
``lightning``) in :data:`attnlab.catalog.RUNNERS`, and owns what every runner shares: the
run folder and its rules, the final weights, ``metrics.json``, ``report.md`` and the run's
state. The training loop itself is the runner's (:mod:`attnlab.runs.runner`).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from safetensors.torch import save

from attnlab.catalog import DATAMODULES, RUNNERS, TASKS
from attnlab.data.datamodule import DataModule
from attnlab.errors import RunDirError
from attnlab.recipes import recipe_path
from attnlab.runs import rundir
from attnlab.runs.checkpoint_io import atomic_write
from attnlab.runs.resume_keys import check_evaluate_overrides, check_resume_overrides
from attnlab.runs.rundir import RunDir
from attnlab.runs.runner import Runner, Weights
from attnlab.runs.spec import RunSpec, resolve
from attnlab.status import is_worker_process, say
from attnlab.train.composite import attach_submodels, build_model
from attnlab.train.report import metrics_json, write_report
from attnlab.train.task import Task

Undo = Callable[[], None]


@dataclass
class Outcome:
    run: RunDir
    metrics: dict[str, float]
    interrupted: bool = False


def build(spec: RunSpec) -> tuple[Task, DataModule]:
    """The task (with its model, sub-models built: :mod:`attnlab.train.composite`) and the datamodule."""
    L.seed_everything(spec.seed, verbose=False)
    model = build_model(spec.model_name, spec.model_config)
    task = TASKS.get(spec.task_name).cls(model=model, optim=spec.optim, **spec.task_args)
    data = DATAMODULES.get(spec.data_name).cls(seed=spec.seed, **spec.data_args)
    attach_submodels(data)  # models a datamodule runs (clevrer-qa's slot encoder)
    return task, data


def runner_of(spec: RunSpec) -> Runner:
    """The runner the spec names (imports its module on first use)."""
    return RUNNERS.get(spec.runner).cls()


def _train(run: RunDir, spec: RunSpec, ckpt: Path | None, title: str) -> Outcome:
    fitted = runner_of(spec).fit(run, spec, checkpoint=ckpt)
    seconds, segments = fitted.train_seconds, fitted.segments
    if fitted.interrupted:
        if fitted.writes_run_folder:
            run.write_state(state="interrupted", train_seconds=seconds, segments=segments)
        return Outcome(run, {}, interrupted=True)
    if fitted.writes_run_folder:
        if fitted.model is not None:
            atomic_write(run.weights, lambda f: f.write(save(_contiguous(fitted.model))))
        (run.path / "metrics.json").write_text(metrics_json(fitted.metrics))
        state = run.state()
        write_report(
            run,
            title=title,
            description=spec.description,
            command=state.get("command", ""),
            metrics=fitted.metrics,
            figures=fitted.figures,
            seconds=seconds,
            segments=segments,
        )
        run.write_state(
            state="finished",
            train_seconds=seconds,
            segments=segments,
            finished=time.strftime("%Y-%m-%d %H:%M:%S"),
        )
    return Outcome(run, fitted.metrics)


def _contiguous(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}


def resolved_config(recipe: str, overrides: list[str]) -> str:
    """The configuration ``attnlab run`` would save as config.yaml (``--print_config``); no run folder."""
    return resolve(recipe_path(recipe), overrides).yaml_text


def run(
    recipe: str, overrides: list[str], *, run_dir: Path | None, command: str, name: str | None = None
) -> Outcome:
    """Train, evaluate and report a recipe in a new run folder; ``name`` titles it (default: the recipe)."""
    spec = resolve(recipe_path(recipe), overrides)
    name = name or recipe
    if is_worker_process():
        run = rundir.attach_worker(os.environ.get(rundir.WORKER_ENV) or run_dir)
        return _train(run, spec, None, title=f"{name} — attnlab run")
    run, undo = _new_run(run_dir, spec, name, command)
    try:
        return _train(run, spec, None, title=f"{name} — attnlab run")
    except (Exception, KeyboardInterrupt) as exc:
        if not run.last_checkpoint.exists():
            undo()  # a failed start leaves no run folder marked running
        else:
            run.mark_stopped(exc)
        raise


def _new_run(
    run_dir: Path | None, spec: RunSpec, name: str, command: str
) -> tuple[RunDir, Callable[[], None]]:
    """A new run folder holding the config, marked running; and what removes what it added."""
    path = run_dir or rundir.default_run_path(name, spec.seed)
    before = set(os.listdir(path)) if path.is_dir() else None
    new_root = _first_missing(path)
    run = rundir.create(path)
    atomic_write(run.config, lambda f: f.write(spec.yaml_text.encode()))
    run.write_state(recipe=name, command=command, started=time.strftime("%Y-%m-%d %H:%M:%S"))
    run.mark_running()
    say(f"run folder {run.path}")
    return run, lambda: _discard(run, before, new_root)


def _first_missing(path: Path) -> Path | None:
    """The outermost of ``path`` and its parents that does not exist yet (what creating it adds)."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def _discard(run: RunDir, before: set[str] | None, new_root: Path | None = None) -> None:
    """Remove a run that failed before its first checkpoint: the whole folder if the run created
    it (and the parents it created, such as runs/RECIPE), else only the entries the run added (a
    folder the user gave may hold other files)."""
    if before is None:
        shutil.rmtree(new_root or run.path, ignore_errors=True)
        return
    for entry in set(os.listdir(run.path)) - before:
        target = run.path / entry
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)


def resume(run_dir: Path, overrides: list[str] | None = None) -> Outcome:
    """Continue an unfinished run from its last checkpoint (from scratch if it has none).

    ``overrides`` may change where and how the run trains (devices, data location, workers:
    :mod:`attnlab.runs.resume_keys`); they are saved to its config.yaml.
    """
    run = rundir.existing(run_dir)
    if run.finished:
        raise RunDirError(f"{run_dir} is finished; nothing to resume (use: attnlab evaluate {run_dir})")
    overrides = overrides or []
    check_resume_overrides(overrides)
    spec = resolve(run.config, overrides)
    if overrides:
        atomic_write(run.config, lambda f: f.write(spec.yaml_text.encode()))
        changes = [*run.state().get("resumed_with", []), " ".join(overrides)]
        run.write_state(resumed_with=changes)
    ckpt = run.last_checkpoint if run.last_checkpoint.exists() else None
    recipe = str(run.state().get("recipe", run_dir.name))
    try:
        return _train(run, spec, ckpt, title=f"{recipe} — attnlab run")
    except (Exception, KeyboardInterrupt) as exc:
        if (
            run.state().get("pid") == os.getpid()
        ):  # failed while training (a start-up failure changes nothing)
            run.mark_stopped(exc)
        raise


def import_weights(
    recipe: str,
    overrides: list[str],
    load: Callable[[torch.nn.Module], object],
    *,
    run_dir: Path | None,
    command: str,
    name: str,
) -> Outcome:
    """A finished run folder for weights trained elsewhere (an official checkpoint): the recipe's
    model built and filled by ``load``, saved as the final weights, tested and reported like a
    trained run, so ``attnlab evaluate`` and ``explain`` take it. Nothing is trained."""
    spec = resolve(recipe_path(recipe), overrides)
    run, undo = _new_run(run_dir, spec, name, command)
    try:
        task, data = build(spec)
        load(task.model)
        atomic_write(run.weights, lambda f: f.write(save(_contiguous(task.model))))
        start = time.perf_counter()
        metrics = runner_of(spec).evaluate(run, spec, "final")
        figures = task.report_figures(data, run.figures)
        seconds = time.perf_counter() - start
    except (Exception, KeyboardInterrupt):
        undo()  # no half-imported run folder
        raise
    (run.path / "metrics.json").write_text(metrics_json(metrics))
    write_report(
        run,
        title=f"{name} — attnlab import",
        description=spec.description,
        command=command,
        metrics=metrics,
        figures=figures,
        seconds=seconds,
    )
    run.write_state(state="finished", train_seconds=0.0, finished=time.strftime("%Y-%m-%d %H:%M:%S"))
    return Outcome(run, metrics)


def evaluate(
    run_dir: Path, *, weights: Weights = "final", overrides: list[str] | None = None
) -> tuple[dict[str, float], Path]:
    """Test a run's weights again; the metrics and the new evaluations/<weights>-<time>.json
    they were written to (nothing is overwritten). ``overrides`` change how it is tested (the
    task's evaluation settings, the test data; never the model): the configuration tested is
    then saved beside the metrics as <weights>-<time>.yaml."""
    run = rundir.existing(run_dir)
    overrides = overrides or []
    check_evaluate_overrides(overrides)
    spec = resolve(run.config, overrides)
    metrics = runner_of(spec).evaluate(run, spec, weights)
    out = rundir.new_stem(run.path / "evaluations", f"{weights}-{time.strftime('%Y%m%d-%H%M%S')}")
    out.parent.mkdir(exist_ok=True)
    if overrides:
        out.with_suffix(".yaml").write_text(spec.yaml_text)
    out = out.with_suffix(".json")
    out.write_text(metrics_json(metrics))
    return metrics, out
