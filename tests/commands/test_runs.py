"""``attnlab runs``: states of fabricated run folders, one real failed run, and --clean-failed."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from attnlab.cli import main
from attnlab.commands.runs import find_runs
from tests.train.conftest import SMALL

HOST = socket.gethostname()


def _dead_pid() -> int:
    """A pid no process has (the highest pid the kernel hands out, plus one, never exists)."""
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


def _fake_run(root: Path, name: str, state: dict[str, object], *, checkpoint: bool) -> Path:
    path = root / "demo" / name
    (path / "checkpoints").mkdir(parents=True)
    (path / "config.yaml").write_text("seed: 0\n")
    (path / "run.json").write_text(json.dumps({"recipe": "demo", "started": name} | state))
    if checkpoint:
        (path / "checkpoints/last.ckpt").write_bytes(b"ckpt")
    return path


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    dead = {"state": "running", "pid": _dead_pid(), "host": HOST}
    _fake_run(tmp_path, "1-finished", {"state": "finished", "train_seconds": 12.0}, checkpoint=True)
    _fake_run(tmp_path, "2-live", {"state": "running", "pid": os.getpid(), "host": HOST}, checkpoint=True)
    _fake_run(tmp_path, "3-interrupted", {"state": "interrupted"}, checkpoint=True)
    _fake_run(tmp_path, "4-killed", dead, checkpoint=True)
    _fake_run(tmp_path, "5-killed-early", dead, checkpoint=False)
    _fake_run(tmp_path, "6-failed", {"state": "failed", "error": "CUDA out of memory"}, checkpoint=True)
    _fake_run(
        tmp_path, "7-elsewhere", {"state": "running", "pid": _dead_pid(), "host": "other"}, checkpoint=True
    )
    (tmp_path / "demo" / "not-a-run").mkdir()
    return tmp_path


def test_each_run_gets_its_state(runs: Path):
    states = {row.run.path.name: row.status for row in find_runs(runs)}
    assert states == {
        "1-finished": "finished",
        "2-live": "running",
        "3-interrupted": "interrupted",
        "4-killed": "killed",
        "5-killed-early": "killed",
        "6-failed": "failed",
        "7-elsewhere": "running",  # another host's process cannot be checked: assumed alive
    }


def test_listing_says_what_to_resume(runs: Path, capsys: pytest.CaptureFixture[str], monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["runs", str(runs)]) == 0
    out = capsys.readouterr().out
    demo = runs / "demo"
    assert [line for line in out.splitlines() if line.startswith("continue:")] == [
        f"continue: attnlab resume {demo / '3-interrupted'}",
        f"continue: attnlab resume {demo / '4-killed'}",
        f"continue: attnlab resume {demo / '5-killed-early'}",
        f"continue: attnlab resume {demo / '6-failed'} (failed: CUDA out of memory)",
    ]
    assert "2 run(s) hold nothing to continue" in out


def test_clean_failed_removes_only_runs_with_nothing_to_continue(runs: Path, capsys):
    assert main(["runs", str(runs), "--clean-failed"]) == 0
    left = sorted(p.name for p in (runs / "demo").iterdir())
    assert left == ["1-finished", "2-live", "3-interrupted", "4-killed", "7-elsewhere", "not-a-run"]
    assert "2 run(s) removed; 5 kept" in capsys.readouterr().out


def test_a_missing_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["runs", str(tmp_path / "nosuch")]) == 2
    assert capsys.readouterr().err.strip() == f"attnlab: error: no runs folder at {tmp_path / 'nosuch'}"


def test_a_run_failing_after_its_first_checkpoint_is_marked_failed(tmp_path: Path, capsys):
    run_dir = tmp_path / "r"
    argv = ["run", "demo", "--run-dir", str(run_dir), "--optim.lr", "1e30", "--optim.warmup_steps", "0"]
    assert main([*argv, "--trainer.max_steps", "50", "--trainer.checkpoint_every", "1", *SMALL]) == 3
    state = json.loads((run_dir / "run.json").read_text())
    assert state["state"] == "failed" and "training stopped at step" in state["error"]
    assert [row.status for row in find_runs(tmp_path)] == ["failed"]
