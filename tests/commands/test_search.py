"""attnlab search: Optuna over the knowledge transfer graph's gates; resume after kill -9; bad input."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from attnlab.cli import main
from attnlab.commands.search import sample_graph
from attnlab.objectives.gan_ktg import edge_names
from tests.train.test_gan_images import tiny


def _study(folder: Path) -> optuna.Study:
    return optuna.load_study(study_name="ktg_gan-fmnist", storage=f"sqlite:///{folder / 'study.db'}")


def test_the_all_cutoff_graph_is_rejected():
    with pytest.raises(optuna.TrialPruned):
        sample_graph(optuna.trial.FixedTrial(dict.fromkeys(edge_names(3), "cutoff")), 3)
    one_through = dict.fromkeys(edge_names(3), "cutoff") | {"D->1": "through"}
    assert sample_graph(optuna.trial.FixedTrial(one_through), 3)["D->1"] == "through"


def test_unwritable_storage_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code = main(
        ["search", "ktg_gan-fmnist", "--trials", "1", "--folder", str(blocker / "study"), *tiny(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"attnlab: error: cannot write the search storage in {blocker / 'study'}")
    assert len(err.strip().splitlines()) == 1


def test_search_needs_a_ktg_recipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["search", "dcgan-fmnist", "--trials", "1", "--folder", str(tmp_path / "s")]) == 2
    assert "needs a knowledge-transfer-graph recipe" in capsys.readouterr().err


def test_a_killed_search_continues_where_it_stopped(tmp_path: Path):
    folder = tmp_path / "study"
    args = ["search", "ktg_gan-fmnist", "--trials", "3", "--trial-steps", "3", "--folder", str(folder),
            *tiny(tmp_path)]  # fmt: skip
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "attnlab.cli", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 240
    while not (folder / "trials" / "0001" / "config.yaml").exists():  # the second trial has started
        assert proc.poll() is None and time.time() < deadline, "the search ended before its second trial"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    states = {t.number: t.state for t in _study(folder).trials}
    assert states[0] == optuna.trial.TrialState.COMPLETE and states[1] == optuna.trial.TrialState.RUNNING
    assert main(args) == 0
    trials = _study(folder).trials
    by_state = {t.number: t.state.name for t in trials}
    assert by_state[0] == "COMPLETE" and by_state[1] == "FAIL"  # the killed trial, not counted
    assert sum(s in ("COMPLETE", "PRUNED") for s in by_state.values()) == 3 and len(trials) == 4
    assert (folder / "best_graph.png").is_file() and (folder / "history.png").is_file()
    assert main(args) == 0 and len(_study(folder).trials) == 4  # nothing left to do


def test_the_history_tells_completed_from_pruned_trials():
    from types import SimpleNamespace

    from attnlab.commands.search import history_points

    def trial(number: int, state: str, value: float | None, steps: dict[int, float]) -> SimpleNamespace:
        return SimpleNamespace(
            number=number, state=SimpleNamespace(name=state), value=value, intermediate_values=steps
        )

    trials = [
        trial(0, "COMPLETE", 1.5, {250: 1.2, 500: 1.4}),
        trial(1, "PRUNED", 1.1, {250: 1.1}),  # Optuna keeps the last reported value as the value
        trial(2, "PRUNED", None, {}),  # rejected before training: nothing to draw
        trial(3, "FAIL", None, {250: 1.3}),
    ]
    assert history_points(trials) == ([(0, 1.5)], [(1, 1.1)])
