"""``attnlab search RECIPE --trials N``: Optuna search of the knowledge transfer graph's gates.

The collaborative-GAN thesis (seed 001) searches the gate of every edge (Through, Cutoff,
Positive-linear, Negative-linear) to maximise Inception Score. Here every trial is a short run
of the recipe (``--trial-steps``, scored by ``test/is_like``: the same IS-like of the final
table, pooled over the generators) with the graph Optuna proposes: TPE sampler (seeded), median
pruner on the IS-like of every validation (:data:`attnlab.train.gan_images.SCORE_LISTENERS`),
SQLite storage in the study folder. A graph whose edges are all Cutoff is rejected (pruned before
it trains: no generator would learn). A search killed mid-trial continues when started again
with the same folder: the trials it finished count, the interrupted one is marked failed and its
run folder replaced. The study folder holds ``study.db``, ``trials/NNNN`` run folders,
``history.png`` (best IS-like vs trial) and ``best_graph.png`` (edges coloured by gate).
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnlab.errors import ConfigError, InputError
from attnlab.objectives.gan_ktg import GATES, edge_names
from attnlab.recipes import recipe_path
from attnlab.runs.spec import resolve
from attnlab.status import say

GATE_COLOURS = {
    "through": "tab:gray",
    "positive-linear": "tab:red",
    "negative-linear": "tab:blue",
    "cutoff": "none",
}


@dataclass
class SearchResult:
    best_graph: dict[str, str]
    best_score: float
    finished: int
    folder: Path


def _optuna() -> Any:
    try:
        import optuna
    except ModuleNotFoundError:
        raise ConfigError("attnlab search needs the 'search' extra (no module 'optuna'): "
                          "pip install 'attnlab[search]'") from None  # fmt: skip
    return optuna


def sample_graph(trial: Any, k: int) -> dict[str, str]:
    """One gate per edge from ``trial``; the all-Cutoff graph is rejected (``optuna.TrialPruned``)."""
    graph = {edge: trial.suggest_categorical(edge, list(GATES)) for edge in edge_names(k)}
    if all(g == "cutoff" for g in graph.values()):
        trial.set_user_attr("rejected", "all edges Cutoff: no generator learns")
        raise _optuna().TrialPruned("all edges Cutoff")
    return graph


def _storage(folder: Path) -> str:
    """``sqlite:///folder/study.db`` after checking the folder can be written (one line if not)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"cannot write the search storage in {folder}: {exc.strerror or exc}") from None
    return f"sqlite:///{(folder / 'study.db').resolve()}"


def _generators(recipe: str, overrides: list[str]) -> int:
    spec = resolve(recipe_path(recipe), overrides)
    if spec.task_name != "gan-images" or spec.task_args.get("method") != "ktg":
        raise ConfigError(f"attnlab search needs a knowledge-transfer-graph recipe (task.method: ktg); "
                          f"'{recipe}' is not one (e.g. ktg_gan-fmnist)")  # fmt: skip
    return int(spec.model_config.num_generators)


def search(
    recipe: str,
    overrides: list[str],
    *,
    trials: int,
    trial_steps: int,
    folder: Path | None,
    seed: int = 0,
) -> SearchResult:
    if trials < 1 or trial_steps < 1:
        raise ConfigError(f"--trials and --trial-steps must be >= 1, got {trials} and {trial_steps}")
    optuna = _optuna()
    k = _generators(recipe, overrides)
    folder = folder or Path("runs/search") / Path(recipe).stem
    study = optuna.create_study(
        study_name=Path(recipe).stem,
        storage=_storage(folder),
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
    )
    _fail_interrupted(study, optuna)
    done = _finished(study, optuna)
    if done < trials:
        say(f"search {folder}: {done} trials done, {trials - done} to go ({trial_steps} steps each)")
        objective = _Objective(recipe, overrides, k, trial_steps, folder)
        study.optimize(objective, n_trials=trials - done, catch=())
    return _summarise(study, optuna, folder, k)


def _finished(study: Any, optuna: Any) -> int:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def _fail_interrupted(study: Any, optuna: Any) -> None:
    """Trials left RUNNING by a killed search are marked FAIL (their run folders are redone)."""
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        say(f"trial {trial.number} was interrupted; marked failed")


class _Objective:
    def __init__(self, recipe: str, overrides: list[str], k: int, steps: int, folder: Path) -> None:
        self.recipe, self.overrides, self.k, self.steps, self.folder = recipe, overrides, k, steps, folder

    def __call__(self, trial: Any) -> float:
        from attnlab.train import engine
        from attnlab.train.gan_images import SCORE_LISTENERS

        graph = sample_graph(trial, self.k)
        run_dir = self.folder / "trials" / f"{trial.number:04d}"
        if run_dir.exists():  # left by an interrupted search; this trial number starts afresh
            shutil.rmtree(run_dir)
        listener = _Pruning(trial)
        SCORE_LISTENERS.append(listener)
        args = [*self.overrides, "--task.graph", json.dumps(graph), "--trainer.max_steps", str(self.steps),
                "--trainer.progress_bar", "false"]  # fmt: skip
        say(f"trial {trial.number}: {graph}")
        try:
            outcome = engine.run(
                self.recipe, args, run_dir=run_dir, command=f"attnlab search (trial {trial.number})"
            )
        finally:
            SCORE_LISTENERS.remove(listener)
        score = float(outcome.metrics["test/is_like"])
        trial.set_user_attr("fid_like", float(outcome.metrics["test/fid_like"]))
        say(f"trial {trial.number}: IS-like {score:.3f}")
        return score


class _Pruning:
    """Reports each validation's IS-like to Optuna; stops the trial when the median pruner says so."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial

    def __call__(self, step: int, scores: dict[str, float]) -> None:
        self.trial.report(scores["is_like"], step)
        if self.trial.should_prune():
            raise _optuna().TrialPruned(f"pruned at step {step}")


def _summarise(study: Any, optuna: Any, folder: Path, k: int) -> SearchResult:
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise InputError(f"search {folder}: no trial completed (all pruned or rejected); run more --trials")
    best = max(complete, key=lambda t: t.value)
    graph = {e: best.params[e] for e in edge_names(k)}
    draw_graph(
        graph,
        k,
        folder / "best_graph.png",
        title=f"best graph: trial {best.number}, IS-like {best.value:.3f}",
    )
    draw_history(study.get_trials(deepcopy=False), folder / "history.png")
    (folder / "best.json").write_text(
        json.dumps({"trial": best.number, "is_like": best.value, "graph": graph}, indent=1)
    )
    finished = _finished(study, optuna)
    say(f"search {folder}: {finished} trials; best IS-like {best.value:.3f} (trial {best.number}): {graph}")
    return SearchResult(graph, float(best.value), finished, folder)


def draw_graph(graph: dict[str, str], k: int, path: Path, title: str = "") -> Path:
    """Nodes D and G0..G(k-1) on a circle; an arrow per non-Cutoff edge, coloured by its gate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    names = ["D", *map(str, range(k))]
    pos = {
        n: (
            math.cos(2 * math.pi * i / len(names) + math.pi / 2),
            math.sin(2 * math.pi * i / len(names) + math.pi / 2),
        )
        for i, n in enumerate(names)
    }
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    for edge, gate in graph.items():
        if gate == "cutoff":
            continue
        s, t = edge.split("->")
        arrow = {"arrowstyle": "-|>", "color": GATE_COLOURS[gate], "lw": 2, "shrinkA": 18, "shrinkB": 18}
        ax.annotate("", xy=pos[t], xytext=pos[s], arrowprops=arrow | {"connectionstyle": "arc3,rad=0.15"})
    for n, (x, y) in pos.items():
        ax.text(x, y, n if n == "D" else f"G{n}", ha="center", va="center", fontsize=12,
                bbox={"boxstyle": "circle", "fc": "white", "ec": "black"})  # fmt: skip
    handles = [Line2D([0], [0], color=c, lw=2, label=g) for g, c in GATE_COLOURS.items() if g != "cutoff"]
    ax.legend(
        handles=handles,
        loc="lower center",
        fontsize=7,
        ncol=3,
        bbox_to_anchor=(0.5, -0.12),
        title="cutoff: no arrow",
        title_fontsize=7,
    )
    ax.set(xlim=(-1.5, 1.5), ylim=(-1.5, 1.5), aspect="equal", title=title)
    ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def history_points(trials: list[Any]) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(trial number, test IS-like) of the completed trials and (number, last validation IS-like) of
    the pruned ones (Optuna also stores that last value as a pruned trial's value)."""
    done = [(t.number, float(t.value)) for t in trials if t.state.name == "COMPLETE"]
    pruned = [
        (t.number, float(t.intermediate_values[max(t.intermediate_values)]))
        for t in trials
        if t.state.name == "PRUNED" and t.intermediate_values
    ]
    return done, pruned


def draw_history(trials: list[Any], path: Path) -> Path:
    """IS-like of every completed trial and the best so far, against the trial number; pruned
    trials at their last validation's IS-like (the value the pruner stopped them on)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done, pruned = history_points(trials)
    fig, ax = plt.subplots(figsize=(5, 3))
    if pruned:
        numbers, values = zip(*pruned, strict=True)
        ax.scatter(numbers, values, s=14, marker="x", color="0.55", label="pruned (last validation)")
    if done:
        numbers, values = zip(*done, strict=True)
        best = [max(values[: i + 1]) for i in range(len(values))]
        ax.scatter(numbers, values, s=12, label="completed trial (test)")
        ax.step(numbers, best, where="post", color="tab:red", label="best so far")
    if done or pruned:
        ax.legend(fontsize=7)
    ax.set(xlabel="trial", ylabel="IS-like (test)")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
