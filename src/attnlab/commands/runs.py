"""``attnlab runs [FOLDER]``: every run under a folder, its state and what to do next.

``--clean-failed`` removes the runs that hold nothing to continue: those that failed
(``run.json`` keeps the error) and those killed before their first checkpoint. Finished,
live, interrupted and killed-but-checkpointed runs are never touched.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from attnlab.errors import RunDirError
from attnlab.runs.rundir import RunDir


@dataclass(frozen=True)
class RunRow:
    run: RunDir
    status: str
    recipe: str
    started: str
    seconds: float | None
    error: str

    @property
    def disposable(self) -> bool:
        """Nothing to continue: failed, or killed before its first checkpoint."""
        killed_empty = self.status == "killed" and not self.run.last_checkpoint.exists()
        return self.status == "failed" or killed_empty


def find_runs(folder: Path) -> list[RunRow]:
    """The runs (folders with a run.json and a config.yaml) under ``folder``, oldest first."""
    if not folder.is_dir():
        raise RunDirError(f"no runs folder at {folder}")
    rows = []
    for state_file in sorted(folder.rglob("run.json")):
        run = RunDir(state_file.parent)
        if not run.config.is_file():
            continue
        try:
            state = run.state()
            status = run.status()
        except RunDirError as exc:  # a run.json cut short: say so, list the others
            state, status = {"error": str(exc)}, "unreadable"
        seconds = state.get("train_seconds")
        rows.append(
            RunRow(
                run,
                status,
                str(state.get("recipe", "")),
                str(state.get("started", "")),
                float(seconds) if isinstance(seconds, (int, float)) else None,
                str(state.get("error") or ""),
            )
        )
    return sorted(rows, key=lambda r: (r.started, str(r.run.path)))


def list_runs(folder: Path, *, clean_failed: bool) -> int:
    rows = find_runs(folder)
    console = Console()
    if clean_failed:
        removed = [row for row in rows if row.disposable]
        for row in removed:
            shutil.rmtree(row.run.path)
            console.print(f"removed {row.run.path} ({row.status})", highlight=False)
        console.print(f"{len(removed)} run(s) removed; {len(rows) - len(removed)} kept", highlight=False)
        return 0
    if not rows:
        console.print(f"no runs under {folder}", highlight=False)
        return 0
    table = Table(title=f"runs under {folder}", title_justify="left")
    for column in ("run", "recipe", "state", "started", "wall time"):
        table.add_column(column, overflow="fold")
    for row in rows:
        wall = "" if row.seconds is None else f"{row.seconds:.0f} s"
        table.add_row(str(row.run.path), row.recipe, row.status, row.started, wall)
    console.print(table, highlight=False)
    for row in rows:
        if row.status in ("interrupted", "killed", "failed"):
            why = f" (failed: {row.error})" if row.error else ""
            console.print(f"continue: attnlab resume {row.run.path}{why}", highlight=False, soft_wrap=True)
    disposable = sum(row.disposable for row in rows)
    if disposable:
        console.print(f"{disposable} run(s) hold nothing to continue: attnlab runs {folder} --clean-failed")
    return 0
