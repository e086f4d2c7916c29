"""report.md: what ran, the final metrics, the curves and the task's figures."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from attnlab.runs.rundir import RunDir
from attnlab.runs.tensorboard import event_files
from attnlab.train.figures import plot_curves


def read_scalars(tb_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar TensorBoard logged in ``tb_dir`` (all event files, resumed runs included)."""
    series: dict[str, dict[int, float]] = {}
    for events in event_files(tb_dir):  # later files hold the later values of a step
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            for event in acc.Scalars(tag):
                series.setdefault(tag, {})[event.step] = event.value
    return {tag: sorted(points.items()) for tag, points in series.items()}


# Why a metric can be undefined (NaN), by the last part of its name; others get a generic reason.
UNDEFINED_WHY = {"motp": "no matches (MOTP averages the overlap of matched objects)"}


def undefined_reason(name: str, value: float) -> str | None:
    """None for a finite value; else why the metric is undefined (NaN) or infinite."""
    if math.isfinite(value):
        return None
    if math.isinf(value):
        return "infinite"
    return UNDEFINED_WHY.get(name.rsplit("/", 1)[-1], "undefined (NaN)")


def metrics_json(metrics: dict[str, float]) -> str:
    """Strict JSON: NaN and inf, which strict parsers reject, are written as null."""
    finite = {k: (v if math.isfinite(v) else None) for k, v in metrics.items()}
    return json.dumps(finite, indent=2, allow_nan=False)


def _metric_rows(metrics: dict[str, float]) -> list[str]:
    rows = []
    for name, value in sorted(metrics.items()):
        why = undefined_reason(name, value)
        rows.append(f"| {name} | {value:.4f} |" if why is None else f"| {name} | n/a: {why} |")
    undefined = [name for name, value in sorted(metrics.items()) if undefined_reason(name, value)]
    if undefined:
        rows += ["", f"Undefined for this run (null in metrics.json): {', '.join(undefined)}."]
    return rows


def _wall_time(seconds: float, segments: int) -> str:
    if segments == 1:
        return f"{seconds:.1f} s"
    return f"{seconds:.1f} s in {segments} segments (resumed {segments - 1}x)"


def write_report(
    run: RunDir,
    *,
    title: str,
    description: str,
    command: str,
    metrics: dict[str, float],
    figures: dict[str, Path],
    seconds: float,
    segments: int = 1,
) -> Path:
    scalars = read_scalars(run.path / "tb")
    curves = {t: s for t, s in scalars.items() if t.startswith(("train/", "val/")) and len(s) > 1}
    if curves:
        figures = {
            "Training and validation curves": plot_curves(curves, run.figures / "curves.png")
        } | figures
    lines = [
        f"# {title}",
        "",
        description,
        "",
        f"Reproduce: `{command}`  ",
        f"Wall time: {_wall_time(seconds, segments)}. Resolved configuration: [config.yaml](config.yaml).",
        "",
        "## Test metrics",
        "",
        "| metric | value |",
        "| --- | --- |",
        *_metric_rows(metrics),
        "",
    ]
    for caption, path in figures.items():
        rel = os.path.relpath(path, run.path)
        lines += [f"## {caption}", "", f"![{caption}]({rel})", ""]
    out = run.path / "report.md"
    out.write_text("\n".join(lines))
    return out
