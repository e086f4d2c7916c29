import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from attnlab.cli import main

# A demo run small enough for tests: few steps, small evaluation sets, no progress bar.
SMALL = [
    "--data.val_size",
    "64",
    "--data.test_size",
    "64",
    "--data.eval_batch_size",
    "64",
    "--trainer.progress_bar",
    "false",
    "--trainer.log_every",
    "5",
]


def attnlab(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real command in a fresh process (as a user would)."""
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "attnlab.cli", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def metrics_of(run_dir: Path) -> dict[str, float]:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "demo"
    code = main(
        [
            "run",
            "demo",
            "--run-dir",
            str(run_dir),
            "--trainer.max_steps",
            "30",
            "--trainer.val_every",
            "15",
            "--trainer.checkpoint_every",
            "10",
            *SMALL,
        ]
    )
    assert code == 0
    return run_dir
