import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

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


def kill_9_after_first_checkpoint(args: list[str], run_dir: Path) -> None:
    """Start ``attnlab *args --run-dir run_dir`` in a process and SIGKILL it at a random moment
    soon after its first checkpoint (maybe mid-checkpoint); it must not have finished."""
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "attnlab.cli", *args, "--run-dir", str(run_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoints/last.ckpt").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(random.uniform(0.0, 0.3))
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "model.safetensors").exists()


def assert_same_final_run(full: Path, resumed: Path) -> None:
    """Bit-identical final weights and equal test metrics."""
    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert metrics_of(full) == metrics_of(resumed)


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
