"""Long jobs the page starts, run as ``attnlab`` processes: fine-tuning on edited maps (a new run
folder inside the runs folder, listed, checkpointed and resumable like any run) and explaining a
run's test set (``attnlab explain``: files in the run's ``explanations/``). Their output goes to
``.explorer-jobs/<id>.log`` in the runs folder. A training job's progress is its run's last logged
training step over the steps asked for; an explanation has none to show until it ends. Cancelling
sends Ctrl-C (SIGINT): a training run stops as after Ctrl-C in a terminal, interrupted with its
checkpoint, and ``attnlab resume`` continues it. The list lives in the server: a reload finds it.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnlab.explorer.scalars import ScalarCache

LOGS = ".explorer-jobs"
GRACE_S = 15.0  # seconds a cancelled job has to stop after Ctrl-C before it is terminated


@dataclass
class Job:
    id: int
    title: str
    run: Path  # the run folder the job writes (a new one), or explains
    steps: int | None  # training steps asked for; None: no progress to show before the end
    process: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.time)
    cancelled: float | None = None  # when Ctrl-C was sent

    def status(self) -> str:
        code = self.process.poll()
        if code is None:
            if self.cancelled is None:
                return "running"
            self._insist()
            return "cancelling"
        if self.cancelled is not None:
            return "cancelled"
        return "finished" if code == 0 else "failed"

    def cancel(self) -> None:
        if self.process.poll() is None and self.cancelled is None:
            self.cancelled = time.time()
            self.process.send_signal(signal.SIGINT)

    def _insist(self) -> None:
        """A process that outlives Ctrl-C by GRACE_S (one started with SIGINT ignored, which a child
        inherits) gets SIGTERM, and SIGKILL after as long again."""
        assert self.cancelled is not None
        waited = time.time() - self.cancelled
        if waited > 2 * GRACE_S:
            self.process.kill()
        elif waited > GRACE_S:
            self.process.terminate()

    def last_line(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""


class Jobs:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._curves = ScalarCache()

    def start(self, title: str, args: list[str], run: Path, steps: int | None) -> Job:
        """``attnlab ARGS`` in the background, about the run folder ``run``."""
        job_id = next(self._ids)
        log = self.root / LOGS / f"{job_id}.log"
        log.parent.mkdir(exist_ok=True)
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "attnlab", *args], stdout=out, stderr=subprocess.STDOUT, cwd=self.root
            )
        job = Job(job_id, title, run, steps, process, log)
        self._jobs[job_id] = job
        return job

    def progress(self, job: Job) -> float:
        """The fraction of the steps the new run has logged (0 before its first log)."""
        if job.status() == "finished":
            return 1.0
        if job.steps is None or not job.run.is_dir():
            return 0.0
        curves = self._curves.curves(job.run)
        done = max(
            (points[-1][0] + 1 for tag, points in curves.items() if tag.startswith("train/") and points),
            default=0,
        )
        return min(done / job.steps, 1.0)

    def describe(self, job: Job) -> dict[str, Any]:
        return {
            "id": job.id,
            "title": job.title,
            "run": job.run.relative_to(self.root).as_posix(),
            "status": job.status(),
            "progress": round(self.progress(job), 4),
            "started": job.started,
            "last_line": job.last_line(),
        }

    def list(self) -> list[dict[str, Any]]:
        return [self.describe(job) for job in sorted(self._jobs.values(), key=lambda j: -j.id)]

    def cancel(self, job_id: int) -> Job | None:
        job = self._jobs.get(job_id)
        if job is not None:
            job.cancel()
        return job

    def stop_all(self) -> None:
        """When the server stops: Ctrl-C to every job still running (each keeps its checkpoint)."""
        for job in self._jobs.values():
            if job.process.poll() is None:
                job.process.send_signal(signal.SIGINT)
