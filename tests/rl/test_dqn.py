"""The DQN runner end to end through the `attnlab` command: run folder, evaluate, user errors,
learning (the agent beats the random floor) and exact resume after kill -9."""

import json
from pathlib import Path

import pytest
import torch

from attnlab.catalog import RUNNERS
from attnlab.cli import main
from tests.train.conftest import assert_same_final_run, attnlab, kill_9_after_first_checkpoint, metrics_of

# A run small enough for tests: few steps, early updates, two evaluation episodes, no progress bar.
SMALL = [
    "--trainer.max_steps",
    "600",
    "--trainer.val_every",
    "300",
    "--trainer.checkpoint_every",
    "200",
    "--trainer.log_every",
    "50",
    "--trainer.progress_bar",
    "false",
    "--dqn.learning_starts",
    "100",
    "--dqn.eval_episodes",
    "2",
]


@pytest.fixture(scope="session")
def dqn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "dqn"
    assert main(["run", "dqn-cartpole", "--run-dir", str(run_dir), *SMALL]) == 0
    return run_dir


def test_every_runner_in_the_catalog_loads_the_class_it_names():
    for entry in RUNNERS.entries():
        assert f"{entry.cls.__module__}:{entry.cls.__qualname__}" == RUNNERS.index[entry.name].target


def test_run_writes_a_complete_run_folder(dqn_run: Path):
    for name in (
        "config.yaml",
        "model.safetensors",
        "report.md",
        "checkpoints/last.ckpt",
        "checkpoints/best.ckpt",
        "figures/curves.png",
    ):
        assert (dqn_run / name).is_file(), name
    assert list((dqn_run / "tb").glob("events.out.tfevents.*"))
    assert json.loads((dqn_run / "run.json").read_text())["state"] == "finished"
    metrics = metrics_of(dqn_run)
    assert set(metrics) == {
        "test/return",
        "test/return_std",
        "test/random_policy_return",
        "test/random_policy_return_std",
    }
    report = (dqn_run / "report.md").read_text()
    assert f"| test/random_policy_return | {metrics['test/random_policy_return']:.4f} |" in report
    config = (dqn_run / "config.yaml").read_text()
    assert "runner: dqn" in config and "learning_starts: 100" in config
    assert "task:" not in config and "data:" not in config
    ckpt = torch.load(dqn_run / "checkpoints/last.ckpt", weights_only=True)
    assert ckpt["step"] == 600 and {"model", "target", "optimizer", "replay", "rng"} <= set(ckpt)


def test_evaluate_reproduces_the_final_metrics(dqn_run: Path):
    assert main(["evaluate", str(dqn_run)]) == 0
    again = json.loads(next((dqn_run / "evaluations").glob("final-*.json")).read_text())
    assert again == metrics_of(dqn_run)
    assert main(["evaluate", str(dqn_run), "--weights", "last"]) == 0
    assert main(["evaluate", str(dqn_run), "--weights", "best"]) == 0


def test_a_finished_run_is_never_overwritten(dqn_run: Path, capsys: pytest.CaptureFixture[str]):
    before = (dqn_run / "model.safetensors").stat().st_mtime_ns
    assert main(["run", "dqn-cartpole", "--run-dir", str(dqn_run), *SMALL]) == 2
    assert main(["resume", str(dqn_run)]) == 2
    assert "finished" in capsys.readouterr().err
    assert (dqn_run / "model.safetensors").stat().st_mtime_ns == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dqn.gama", "0.9"], "unknown config key 'dqn.gama' (did you mean 'dqn.gamma'?)"),
        (["--data.batch_size", "4"], "unknown config key 'data.batch_size'"),
        (["--dqn.env", "CartPol-v1"], "unknown environment 'CartPol-v1' (did you mean 'CartPole-v1'?)"),
        (
            ["--model.obs_dim", "8"],
            "environment 'CartPole-v1' has observations of length 4 but model.obs_dim is 8",
        ),
        (["--dqn.gamma", "1.5"], "dqn.gamma must lie in [0, 1], got 1.5"),
        (["--trainer.devices", "2"], "runner 'dqn' does not support trainer.devices"),
        (["--trainer.log_every", "0"], "trainer.log_every must be >= 1, got 0"),
        (["--runner", "dqm"], "unknown runner 'dqm' (did you mean 'dqn'?)"),
        (["--dqn.n_step", "0"], "dqn.n_step must be >= 1, got 0"),
        (["--dqn.priority_beta", "1.5"], "dqn.priority_beta must lie in [0, 1], got 1.5"),
        (
            ["--dqn.loss", "categorical"],
            "dqn.loss categorical needs a distributional Q-network (atoms and a support, such as aqt-atari); "
            "model q-mlp gives Q-values only",
        ),
    ],
)
def test_user_errors_are_one_line_and_leave_no_run_folder(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    run_dir = tmp_path / "r"
    assert main(["run", "dqn-cartpole", "--run-dir", str(run_dir), *SMALL, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not run_dir.exists()  # a failed start leaves no run folder marked running


def test_a_section_the_runner_does_not_read_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["run", "demo", "--runner", "dqn", "--run-dir", str(tmp_path / "r")]) == 2
    assert "runner 'dqn' reads no 'task' section" in capsys.readouterr().err


@pytest.mark.parametrize(
    "rainbow", [[], ["--dqn.n_step", "3", "--dqn.prioritized", "true"]], ids=["dqn", "nstep-per"]
)
def test_the_trained_agent_beats_the_random_policy(rainbow: list[str], tmp_path: Path):
    """A third of the recipe's budget already balances the pole far longer than chance, with
    3-step returns and prioritised replay too."""
    run_dir = tmp_path / "learn"
    args = [
        "--trainer.max_steps",
        "6000",
        "--trainer.val_every",
        "2000",
        "--trainer.progress_bar",
        "false",
        *rainbow,
    ]
    assert main(["run", "dqn-cartpole", "--run-dir", str(run_dir), *args]) == 0
    metrics = metrics_of(run_dir)
    assert metrics["test/random_policy_return"] < 40
    assert metrics["test/return"] > 4 * metrics["test/random_policy_return"]


@pytest.mark.parametrize(
    "rainbow", [[], ["--dqn.n_step", "3", "--dqn.prioritized", "true"]], ids=["dqn", "nstep-per"]
)
def test_kill_9_then_resume_equals_an_uninterrupted_run(rainbow: list[str], tmp_path: Path):
    args = [
        "run",
        "dqn-cartpole",
        "--trainer.max_steps",
        "3000",
        "--trainer.checkpoint_every",
        "200",
        "--trainer.val_every",
        "1000",
        "--trainer.progress_bar",
        "false",
        "--dqn.learning_starts",
        "200",
        "--dqn.target_sync_every",
        "100",
        "--dqn.eval_episodes",
        "2",
        *rainbow,
    ]
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert attnlab(*args, "--run-dir", str(full)).returncode == 0

    kill_9_after_first_checkpoint(args, killed)
    step = torch.load(killed / "checkpoints/last.ckpt", weights_only=True)["step"]
    assert 0 < step < 3000

    resumed = attnlab("resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    assert_same_final_run(full, killed)
    last_a = torch.load(full / "checkpoints/last.ckpt", weights_only=True)
    last_b = torch.load(killed / "checkpoints/last.ckpt", weights_only=True)
    for key in last_a["target"]:
        assert torch.equal(last_a["target"][key], last_b["target"][key]), key
    assert torch.equal(last_a["replay"]["obs"], last_b["replay"]["obs"])
    if rainbow:
        assert torch.equal(last_a["replay"]["horizons"], last_b["replay"]["horizons"])
        assert last_a["replay"]["horizons"].max() == 3
        assert torch.equal(last_a["priorities"]["tree"], last_b["priorities"]["tree"])
