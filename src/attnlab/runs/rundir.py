"""The run folder: what it holds, its state, and the rules that protect it.

RUN_DIR/
  config.yaml           resolved configuration (what `attnlab resume` reads)
  run.json              state (see RunDir.status), recipe, command, times, the training process
  checkpoints/last.ckpt  every trainer.checkpoint_every steps (atomic)
  checkpoints/best.ckpt  best by the task's monitored validation metric
  model.safetensors     final weights
  metrics.json          final test metrics
  report.md, figures/   the report
  tb/                   TensorBoard logs
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnlab.errors import RunDirError
from attnlab.files import atomic_write

WORKER_ENV = "ATTNLAB_RUN_DIR"  # rank 0's run folder, inherited by the workers Lightning launches
WEIGHTS_FILE = "model.safetensors"  # the final weights


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.ckpt"

    @property
    def weights(self) -> Path:
        return self.path / WEIGHTS_FILE

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    def state(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.path / "run.json").read_text()))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RunDirError(f"{self.path}/run.json is unreadable: {exc}") from None

    def write_state(self, **updates: Any) -> None:
        state = self.state() | updates
        atomic_write(self.path / "run.json", lambda f: f.write(json.dumps(state, indent=2).encode()))

    @property
    def finished(self) -> bool:
        return self.state().get("state") == "finished"

    def mark_running(self) -> None:
        """State ``running``, with the process, so that :meth:`status` can tell a killed one."""
        self.write_state(state="running", pid=os.getpid(), host=socket.gethostname(), error=None)

    def mark_stopped(self, exc: BaseException) -> None:
        """After a failure (or Ctrl-C outside the training loop) that left a checkpoint to resume."""
        if isinstance(exc, KeyboardInterrupt):
            self.write_state(state="interrupted")
        else:
            self.write_state(state="failed", error=" ".join(str(exc).split()) or type(exc).__name__)

    def status(self) -> str:
        """``finished``, ``running`` (its process is alive), ``interrupted`` (Ctrl-C), ``failed``
        (an error; ``run.json`` says which), or ``killed`` (marked running, its process gone)."""
        state = self.state()
        label = str(state.get("state", "unknown"))
        if label == "running" and not _alive(state.get("pid"), state.get("host")):
            return "killed"
        return label


def _alive(pid: object, host: object) -> bool:
    """Whether the process that marked a run running still lives (on another host: assume so)."""
    if not isinstance(pid, int):
        return False
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def default_run_path(recipe: str, seed: int) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path("runs") / Path(recipe).stem / f"{stamp}-seed{seed}"
    n = 1
    while path.exists():
        n += 1
        path = path.with_name(f"{stamp}-seed{seed}-{n}")
    return path


def create(path: Path) -> RunDir:
    """A new run folder; refuses to touch a folder that already holds a run."""
    run = RunDir(path)
    if run.config.exists():
        if run.finished:
            raise RunDirError(
                f"{path} holds a finished run; nothing was overwritten (choose another --run-dir)"
            )
        raise RunDirError(f"{path} holds an unfinished run; continue it with: attnlab resume {path}")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RunDirError(f"cannot write the run folder {path}: {exc.strerror or exc}") from None
    return run


def existing(path: Path) -> RunDir:
    run = RunDir(path)
    if not path.is_dir():
        raise RunDirError(f"run folder not found: {path}")
    if not run.config.is_file():
        raise RunDirError(f"{path} is not an attnlab run folder (no config.yaml)")
    return run


def attach_worker(path: str | Path | None, *, timeout_s: float = 120.0) -> RunDir:
    """A DDP worker joins rank 0's run folder once rank 0 has written its config."""
    if path is None:
        raise RunDirError("a multi-process run started without Lightning's launcher needs --run-dir")
    run = RunDir(Path(path))
    deadline = time.monotonic() + timeout_s
    while not run.config.is_file():
        if time.monotonic() > deadline:
            raise RunDirError(f"rank 0 did not create {path}/config.yaml within {timeout_s:.0f} s")
        time.sleep(0.2)
    return run


def new_stem(folder: Path, name: str) -> Path:
    """``folder/<name>`` or, if a file of that stem exists (two results in one second),
    ``folder/<name>-2``, ``-3`` ...: results kept in a run folder never overwrite each other."""
    taken = {p.stem for p in folder.glob(f"{name}*")} if folder.is_dir() else set()
    stem, n = name, 1
    while stem in taken:
        n += 1
        stem = f"{name}-{n}"
    return folder / stem
