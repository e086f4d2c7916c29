"""What the explorer knows about each run folder, read from its files and never fatal.

A run is a folder with a ``run.json`` (:mod:`attnlab.runs.rundir`). Its summary (the runs
table's row) comes from ``run.json``, ``config.yaml`` (model and dataset names) and
``metrics.json``; a file that is missing or cut short makes the run *broken*, with the reason,
and the other runs are listed as usual. Summaries are cached by the files' modification times,
so a table of a thousand runs is read from disk once.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from attnlab.errors import RunDirError
from attnlab.runs.rundir import RunDir

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster on a big table
_FIGURE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")  # ![caption](path) in report.md
KEY_METRICS = 4  # test metrics shown in the table


@dataclass(frozen=True)
class RunSummary:
    id: str  # the folder relative to the runs folder, with '/'
    recipe: str
    model: str
    dataset: str
    status: str  # finished, running, interrupted, failed, killed, or broken
    started: str
    seconds: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""  # why a run failed or is broken
    task: str = ""  # the config's task name (what the page offers: attention-branch runs are editable)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def read_yaml(path: Path) -> dict[str, Any]:
    """A mapping from a YAML file; RunDirError (one line) when it is missing or not a mapping."""
    try:
        data = yaml.load(path.read_text(), Loader=_Loader)
    except FileNotFoundError:
        raise RunDirError(f"{path.name} is missing") from None
    except (OSError, yaml.YAMLError) as exc:
        raise RunDirError(f"{path.name} is unreadable: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path.name} is not a mapping")
    return data


def read_metrics(path: Path) -> dict[str, float]:
    """``metrics.json`` as name -> number ({} before the test); RunDirError when cut short."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path.name} is unreadable: {exc}") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path.name} is not a mapping")
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))}


def inside(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


def _name(section: object) -> str:
    return str(section.get("name", "")) if isinstance(section, dict) else ""


def summarise(root: Path, folder: Path) -> RunSummary:
    """The table row of the run in ``folder`` (inside ``root``); a broken run says why."""
    run = RunDir(folder)
    run_id = folder.relative_to(root).as_posix()
    state: dict[str, Any] = {}
    try:
        state = run.state()
        status = run.status()
        config = read_yaml(run.config)
        metrics = read_metrics(folder / "metrics.json")
    except RunDirError as exc:
        return RunSummary(
            run_id,
            str(state.get("recipe", "")),
            "",
            "",
            "broken",
            str(state.get("started", "")),
            None,
            error=str(exc).removeprefix(f"{folder}/"),
        )
    seconds = state.get("train_seconds")
    tests = {k: v for k, v in metrics.items() if k.startswith("test/")} or metrics
    # what the run measured before its losses: the table shows the first few
    tests = dict(sorted(tests.items(), key=lambda item: "loss" in item[0]))
    return RunSummary(
        id=run_id,
        recipe=str(state.get("recipe", "")),
        model=_name(config.get("model")),
        dataset=_name(config.get("data")),
        status=status,
        started=str(state.get("started", "")),
        seconds=float(seconds) if isinstance(seconds, (int, float)) else None,
        metrics=dict(list(tests.items())[:KEY_METRICS]),
        error=str(state.get("error") or ""),
        task=_name(config.get("task")),
    )


def report_figures(folder: Path) -> list[dict[str, str]]:
    """The report's figures in its order, ``{"caption", "path"}`` with paths relative to the
    run (without a report, every PNG, GIF or SVG under ``figures/``), then the pictures of
    ``attnlab explain``'s evaluations, newest first."""
    report = folder / "report.md"
    if report.is_file():
        found = _FIGURE.findall(report.read_text(errors="replace"))
        figures = [{"caption": c, "path": p} for c, p in found if not p.startswith(("/", "http"))]
    else:
        pictures = sorted(p for p in (folder / "figures").glob("*") if p.suffix in (".png", ".gif", ".svg"))
        figures = [{"caption": p.stem, "path": p.relative_to(folder).as_posix()} for p in pictures]
    explained = sorted((folder / "explanations").glob("*.png"), reverse=True)
    return figures + [
        {
            "caption": f"attnlab explain: {p.stem} (table: {p.stem}.md)",
            "path": p.relative_to(folder).as_posix(),
        }
        for p in explained
    ]


class RunIndex:
    """The runs under a folder, each summary cached until one of its files changes."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: dict[Path, tuple[tuple[float, ...], RunSummary]] = {}

    def _stamp(self, folder: Path) -> tuple[float, ...]:
        stamps = []
        for name in ("run.json", "config.yaml", "metrics.json"):
            try:
                stamps.append((folder / name).stat().st_mtime)
            except OSError:
                stamps.append(-1.0)
        return tuple(stamps)

    def runs(self) -> list[RunSummary]:
        """Every run (a folder holding run.json), newest first."""
        found = self.root.rglob("run.json")  # does not descend into linked folders
        folders = sorted({p.parent for p in found if inside(self.root, p.resolve())})
        rows = []
        for folder in folders:
            stamp = self._stamp(folder)
            cached = self._cache.get(folder)
            if cached is None or cached[0] != stamp:
                cached = (stamp, summarise(self.root, folder))
                self._cache[folder] = cached
            rows.append(cached[1])
        return sorted(rows, key=lambda r: (r.started, r.id), reverse=True)
