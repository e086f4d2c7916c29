"""The run engine end to end through the `attnlab` command."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from attnlab.cli import main
from attnlab.runs.tensorboard import event_files
from tests.train.conftest import (
    SMALL,
    assert_same_final_run,
    attnlab,
    kill_9_after_first_checkpoint,
    metrics_of,
)


def test_run_writes_a_complete_run_folder(finished_run: Path):
    for name in (
        "config.yaml",
        "run.json",
        "model.safetensors",
        "metrics.json",
        "report.md",
        "checkpoints/last.ckpt",
        "checkpoints/best.ckpt",
        "figures/curves.png",
        "figures/attention.png",
        "figures/confusion.png",
    ):
        assert (finished_run / name).is_file(), name
    assert list((finished_run / "tb").glob("events.out.tfevents.*"))
    assert json.loads((finished_run / "run.json").read_text())["state"] == "finished"
    report = (finished_run / "report.md").read_text()
    metrics = metrics_of(finished_run)
    assert {"test/acc", "test/loss"} <= set(metrics)
    assert f"| test/acc | {metrics['test/acc']:.4f} |" in report
    assert "attnlab run demo" in report  # the command that reproduces it
    # checkpoints load without unpickling code
    ckpt = torch.load(finished_run / "checkpoints/last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 30


def test_config_is_saved_resolved_with_overrides(finished_run: Path):
    text = (finished_run / "config.yaml").read_text()
    assert "max_steps: 30" in text and "val_size: 64" in text and "depth: 2" in text


def test_evaluate_reproduces_the_final_metrics(finished_run: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["evaluate", str(finished_run)]) == 0
    again = json.loads(next((finished_run / "evaluations").glob("final-*.json")).read_text())
    expected = metrics_of(finished_run)
    assert again["test/acc"] == pytest.approx(expected["test/acc"])
    assert again["test/loss"] == pytest.approx(expected["test/loss"], rel=1e-5)
    assert main(["evaluate", str(finished_run), "--weights", "best"]) == 0


def test_evaluate_with_overrides_tests_that_configuration_and_keeps_it(
    finished_run: Path, capsys: pytest.CaptureFixture[str]
):
    config = (finished_run / "config.yaml").read_text()
    assert main(["evaluate", str(finished_run), "--weights", "last", "--data.test_size", "32"]) == 0
    tested = next((finished_run / "evaluations").glob("last-*.yaml")).read_text()
    assert "test_size: 32" in tested and "test_size: 64" in config
    assert (finished_run / "config.yaml").read_text() == config  # the run itself is unchanged
    assert json.loads(next((finished_run / "evaluations").glob("last-*.json")).read_text())["test/acc"] >= 0
    capsys.readouterr()
    before = sorted((finished_run / "evaluations").iterdir())
    assert main(["evaluate", str(finished_run), "--model.depth", "3"]) == 2
    err = capsys.readouterr().err
    assert "evaluate cannot change model.depth" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert sorted((finished_run / "evaluations").iterdir()) == before


def test_a_finished_run_is_never_overwritten(finished_run: Path, capsys: pytest.CaptureFixture[str]):
    before = (finished_run / "model.safetensors").stat().st_mtime_ns
    assert main(["run", "demo", "--run-dir", str(finished_run), *SMALL]) == 2
    assert main(["resume", str(finished_run)]) == 2
    err = capsys.readouterr().err
    assert "finished" in err and "Traceback" not in err
    assert (finished_run / "model.safetensors").stat().st_mtime_ns == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "demoo"], "unknown recipe 'demoo' (did you mean 'demo'?)"),
        (
            ["run", "demo", "--model.dpth", "3"],
            "unknown config key 'model.dpth' (did you mean 'model.depth'?)",
        ),
        (
            ["run", "demo", "--model.name", "transformer-classifer-tiny"],
            "did you mean 'transformer-classifier-tiny'",
        ),
        (["run", "demo", "--trainer.max_steps", "many"], "trainer.max_steps"),
        (["run", "demo", "--model.num_classes", "5"], "the dataset has 8 classes but the model predicts 5"),
        (["run", "demo", "--data.num_noise", "30"], "token ids must lie in [0, 24)"),
        (["run", "missing.yaml"], "recipe file not found"),
        (["resume", "/nonexistent/run"], "run folder not found"),
        (["evaluate", "/tmp"], "not an attnlab run folder"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    extra = ["--run-dir", str(tmp_path / "r"), *SMALL, "--trainer.max_steps", "2"] if args[0] == "run" else []
    if "--trainer.max_steps" in args:
        extra = extra[:-2]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_user_error_in_a_real_process_has_no_traceback(tmp_path: Path):
    done = attnlab("run", "demo", "--model.dpth", "3", "--run-dir", str(tmp_path / "r"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "attnlab: error: unknown config key 'model.dpth' (did you mean 'model.depth'?)"
    ]
    assert not (tmp_path / "r").exists()


def test_unwritable_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["run", "demo", "--run-dir", str(blocker / "run"), *SMALL]) == 2
    assert "cannot write the run folder" in capsys.readouterr().err


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    run_dir = tmp_path / "r"
    assert (
        main(
            [
                "run",
                "demo",
                "--run-dir",
                str(run_dir),
                "--trainer.max_steps",
                "10",
                "--trainer.checkpoint_every",
                "5",
                *SMALL,
            ]
        )
        == 0
    )
    state = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps(state | {"state": "running"}))
    (run_dir / "checkpoints/last.ckpt").write_bytes(b"not a checkpoint")
    assert main(["resume", str(run_dir)]) == 2
    assert "is corrupt" in capsys.readouterr().err


def test_non_finite_loss_stops_with_step_and_term(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    code = main(
        [
            "run",
            "demo",
            "--run-dir",
            str(tmp_path / "r"),
            "--optim.lr",
            "1e30",
            "--optim.warmup_steps",
            "0",
            "--trainer.max_steps",
            "50",
            *SMALL,
        ]
    )
    err = capsys.readouterr().err
    assert code == 3
    assert "training stopped at step" in err and "'ce'" in err and "Traceback" not in err


def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path: Path):
    args = [
        "run",
        "demo",
        "--trainer.max_steps",
        "300",
        "--trainer.checkpoint_every",
        "10",
        "--trainer.val_every",
        "100",
        *SMALL,
    ]
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert attnlab(*args, "--run-dir", str(full)).returncode == 0

    kill_9_after_first_checkpoint(args, killed)
    step = torch.load(killed / "checkpoints/last.ckpt", weights_only=True)["global_step"]
    assert 0 < step < 300

    before = torch.load(killed / "checkpoints/last.ckpt", weights_only=True)["callbacks"][
        "TrainClockCallback"
    ]
    assert before["segments"] == 1 and before["seconds"] > 0

    resumed = attnlab("resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    assert_same_final_run(full, killed)

    state = json.loads((killed / "run.json").read_text())
    assert state["segments"] == 2 and state["train_seconds"] > before["seconds"]
    assert "in 2 segments (resumed 1x)" in (killed / "report.md").read_text()
    assert _tensorboard_steps(killed) == _tensorboard_steps(full)  # each step once, as uninterrupted


def _tensorboard_steps(run_dir: Path) -> dict[str, list[int]]:
    """Every scalar's steps in the order the event files hold them, read raw (TensorBoard's own
    reader would hide steps logged twice)."""
    steps: dict[str, list[int]] = {}
    for path in event_files(run_dir / "tb"):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(event.step)
    return steps


def test_ddp_on_two_cpu_processes(tmp_path: Path):
    run_dir = tmp_path / "ddp"
    done = attnlab(
        "run",
        "demo",
        "--run-dir",
        str(run_dir),
        "--trainer.accelerator",
        "cpu",
        "--devices",
        "2",
        "--trainer.strategy",
        "ddp",
        "--trainer.max_steps",
        "8",
        "--trainer.val_every",
        "4",
        *SMALL,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((run_dir / "run.json").read_text())["state"] == "finished"
    assert torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)["global_step"] == 8


def test_list_shows_recipes_and_models(capsys: pytest.CaptureFixture[str]):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "transformer-classifier-tiny" in out and "signal-tokens" in out


def test_the_recipe_names_its_runner_and_lightning_is_the_default(finished_run: Path):
    assert "runner: lightning" in (finished_run / "config.yaml").read_text()


def test_a_failed_start_leaves_no_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """The model/dataset mismatch surfaces inside the runner, after the folder was created."""
    fresh = tmp_path / "fresh"
    assert main(["run", "demo", "--run-dir", str(fresh), "--model.num_classes", "5", *SMALL]) == 2
    assert not fresh.exists()
    given = tmp_path / "given"  # a folder the user made keeps what it held
    given.mkdir()
    (given / "notes.txt").write_text("mine")
    assert main(["run", "demo", "--run-dir", str(given), "--model.num_classes", "5", *SMALL]) == 2
    assert sorted(p.name for p in given.iterdir()) == ["notes.txt"]
    assert "the dataset has 8 classes but the model predicts 5" in capsys.readouterr().err


def test_ctrl_c_exits_130_naming_the_resume_command_and_resume_finishes(tmp_path: Path):
    run_dir = tmp_path / "interrupted"
    args = ["run", "demo", "--trainer.max_steps", "300", "--trainer.checkpoint_every", "30", *SMALL]
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "attnlab.cli", *args, "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoints/last.ckpt").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(2.0)  # log some steps past the checkpoint
    assert proc.poll() is None, "training finished before Ctrl-C"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"attnlab resume {run_dir}" in err and "Traceback" not in err
    assert json.loads((run_dir / "run.json").read_text())["state"] == "interrupted"
    resumed = attnlab(
        "resume", str(run_dir), "--trainer.accelerator", "cpu", "--devices", "1"
    )  # another machine
    assert resumed.returncode == 0, resumed.stderr
    state = json.loads((run_dir / "run.json").read_text())
    assert state["state"] == "finished" and state["resumed_with"] == [
        "--trainer.accelerator cpu --trainer.devices 1"
    ]
    assert "accelerator: cpu" in (run_dir / "config.yaml").read_text()
    # Ctrl-C flushed what was logged after the last checkpoint; the resumed run logs it again.
    # (Lightning itself logs "epoch" twice at validation steps, so only the curves are checked.)
    curves = {t: s for t, s in _tensorboard_steps(run_dir).items() if t.startswith(("train/", "val/"))}
    assert curves["train/loss"][-1] == 299
    for tag, steps in curves.items():
        assert steps == sorted(set(steps)), tag


def test_a_starting_run_says_what_it_is_doing(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Before training shows a bar: the start (before PyTorch loads), the run folder, the model."""
    run_dir = tmp_path / "r"
    assert main(["run", "demo", "--run-dir", str(run_dir), "--trainer.max_steps", "2", *SMALL]) == 0
    status = [line for line in capsys.readouterr().out.splitlines() if line.startswith("attnlab: ")]
    assert status == [
        "attnlab: starting demo (loading PyTorch)",
        f"attnlab: run folder {run_dir}",
        "attnlab: model transformer-classifier-tiny: 71,304 parameters; data signal-tokens",
    ]
