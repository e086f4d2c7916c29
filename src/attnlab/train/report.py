"""report.md: what ran, the final metrics, the curves and the task's figures."""

from __future__ import annotations

import os
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from attnlab.runs.rundir import RunDir
from attnlab.train.figures import plot_curves


def read_scalars(tb_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar TensorBoard logged in ``tb_dir`` (all event files, resumed runs included)."""
    series: dict[str, dict[int, float]] = {}
    for events in sorted(tb_dir.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            for event in acc.Scalars(tag):
                series.setdefault(tag, {})[event.step] = event.value
    return {tag: sorted(points.items()) for tag, points in series.items()}


def write_report(
    run: RunDir,
    *,
    title: str,
    description: str,
    command: str,
    metrics: dict[str, float],
    figures: dict[str, Path],
    seconds: float,
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
        f"Wall time: {seconds:.1f} s. Resolved configuration: [config.yaml](config.yaml).",
        "",
        "## Test metrics",
        "",
        "| metric | value |",
        "| --- | --- |",
        *[f"| {name} | {value:.4f} |" for name, value in sorted(metrics.items())],
        "",
    ]
    for caption, path in figures.items():
        rel = os.path.relpath(path, run.path)
        lines += [f"## {caption}", "", f"![{caption}]({rel})", ""]
    out = run.path / "report.md"
    out.write_text("\n".join(lines))
    return out
