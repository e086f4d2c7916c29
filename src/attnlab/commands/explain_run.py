"""``attnlab explain RUN_DIR``: score explanation methods on a finished run's test split.

:func:`explain_run` builds the run's model and data through the engine, loads its
final weights, scores every method with
:func:`attnlab.explain.scoring.evaluate_explanations` and writes, beside the
earlier ones, ``explanations/<time>-<methods>.md``, ``.json`` and ``.png``. A
method that fails (Grad-CAM++'s ``exp(score)`` overflowing float32) is recorded as
failed with its reason; the others are written all the same. Only runs whose task
is a classification task (classifiers, ABN, ST-ABN: class scores to explain) apply.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attnlab.catalog import TASKS
from attnlab.errors import AttnlabError, ConfigError, RunDirError, unknown
from attnlab.explain.cam import METHODS as CAM_METHODS
from attnlab.explain.cam import min_max_normalize
from attnlab.explain.maps import (
    METHODS,
    check_methods,
    default_cam_layer,
    explanation_maps,
    predicted_classes,
)
from attnlab.explain.regions import REGIONS
from attnlab.explain.scoring import (
    METRICS,
    TARGETS,
    Score,
    batch_targets,
    check_metrics,
    evaluate_explanations,
    example_chunks,
    model_device,
)
from attnlab.explain.tables import markdown_table
from attnlab.files import atomic_write
from attnlab.runs import rundir
from attnlab.runs.spec import RunSpec, resolve
from attnlab.runs.weights import load_initial_weights
from attnlab.train.classification import ClassificationTask
from attnlab.train.engine import build
from attnlab.train.figures import class_titles, plot_overlays

FOLDER = "explanations"  # in the run folder: one .md, .json and .png per evaluation
_OTHER_TASKS = {  # what to look at instead, for runs explain does not take
    "object-centric": "its report's decomposition figures (figures/decomposition.png and .gif) "
    "or `attnlab evaluate RUN`",
}


@dataclass(frozen=True)
class Explanation:
    """What :func:`explain_run` wrote, and which methods failed (method -> reason)."""

    report: Path  # the .md table
    data: Path  # the .json
    figure: Path | None  # the .png, when some method's maps could be drawn
    failed: dict[str, str] = field(default_factory=dict)
    scored: list[str] = field(default_factory=list)  # methods with scores


def explain_run(
    run_dir: str | Path,
    *,
    methods: Sequence[str] = METHODS,
    metrics: Sequence[str] = METRICS,
    limit: int = 100,
    out: str | Path | None = None,
    layer: str | None = None,
    targets: str = "predicted",
    steps: int = 50,
    batch_size: int = 32,
    deletion_baseline: str = "zeros",
    insertion_baseline: str = "blur",
    figure_examples: int = 6,
    device: str | None = None,
    regions: str = "boxes",
    float64: bool = False,
) -> Explanation:
    """Explain a finished run's final weights on its test split.

    Writes ``<time>-<methods>.json``, ``.md`` (the table of :func:`markdown_table`)
    and ``.png`` (``figure_examples`` test examples, each method's map; a video's
    middle frame) into the run folder's ``explanations/``, or into ``out``; never
    over an earlier evaluation. ``device``: default CUDA when available.
    ``float64``: the model and the maps in float64 (Grad-CAM++'s ``exp(score)``
    overflows float32 for scores above 88). Other arguments as
    :func:`evaluate_explanations`."""
    check_methods(methods, {})  # before the model and the data are built
    check_metrics(metrics)
    if targets not in TARGETS:
        raise unknown("targets", targets, TARGETS)
    if regions not in REGIONS:
        raise unknown("regions", regions, REGIONS)
    run = rundir.existing(Path(run_dir))
    spec = resolve(run.config, [])
    _check_task(spec, run.path)
    if not run.weights.is_file():
        raise RunDirError(f"{run.path} has no final weights {run.weights.name} (unfinished run?)")
    task, data = build(spec)
    model = task.model
    load_initial_weights(model, run.weights)
    dtype = torch.float64 if float64 else torch.float32
    model.to(torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu")), dtype).eval()
    loader = _WithDtype(data.test_dataloader(), dtype)
    results = evaluate_explanations(
        model,
        loader,
        methods=methods,
        metrics=metrics,
        layer=layer,
        limit=limit,
        targets=targets,
        steps=steps,
        batch_size=batch_size,
        deletion_baseline=deletion_baseline,
        insertion_baseline=insertion_baseline,
        regions=regions,
    )
    failed = {m: row[next(iter(row))].note for m, row in results.items() if row and _failed(row)}
    if failed and not float64:
        hint = f" (rerun with attnlab explain {run.path} --float64)"
        failed = {m: _with_hint(reason, hint) for m, reason in failed.items()}
        results = {m: _hinted(row, hint) if m in failed else row for m, row in results.items()}
    stem = _new_stem(Path(out) if out is not None else run.path / FOLDER, methods)
    first = next(example_chunks(loader, max(1, figure_examples), max(1, figure_examples)))
    inputs = first["input"].to(model_device(model))
    uses_layer = any(m in CAM_METHODS or m == "guided-gradcam" for m in methods)
    used_layer = (layer or _layer_name(model, inputs)) if uses_layer else None
    chosen = batch_targets(model, first, inputs, targets, None)
    drawn = [m for m in methods if m not in failed]
    names = getattr(data, "class_names", None)
    figure = _figure(model, first, inputs, chosen, drawn, layer, stem.with_suffix(".png"), names)
    info = {
        "run": str(run.path),
        "model": spec.model_name,
        "data": spec.data_name,
        "split": "test",
        "weights": rundir.WEIGHTS_FILE,
        "examples": max((s.count + s.skipped for r in results.values() for s in r.values()), default=0),
        "targets": targets,
        "cam_layer": used_layer,
        "steps": steps,
        "baselines": {"deletion": deletion_baseline, "insertion": insertion_baseline},
        "regions": regions,
        "dtype": str(dtype).removeprefix("torch."),
        "failed": failed,
    }
    report, saved = _write_reports(stem, info, results, figure)
    scored = [m for m, row in results.items() if any(s.count for s in row.values())]
    return Explanation(report, saved, figure, failed, scored)


def _check_task(spec: RunSpec, path: Path) -> None:
    """Only classification runs have class scores to explain: say what to use for the others."""
    task = None if spec.task_name is None else TASKS.get(spec.task_name).cls
    if isinstance(task, type) and issubclass(task, ClassificationTask):
        return
    instead = _OTHER_TASKS.get(spec.task_name or "", "`attnlab evaluate RUN` and its report.md")
    what = f"task '{spec.task_name}'" if spec.task_name else f"runner '{spec.runner}'"
    raise ConfigError(
        f"attnlab explain takes classification runs (image or video classifiers, ABN / ST-ABN); "
        f"{path} is a run of {what}: see {instead.replace('RUN', str(path))}"
    )


@dataclass(frozen=True)
class _WithDtype:
    """The loader's batches with their floating ``input`` in ``dtype`` (the model's); iterable again."""

    batches: Iterable[Mapping[str, torch.Tensor]]
    dtype: torch.dtype

    def __iter__(self) -> Iterator[Mapping[str, torch.Tensor]]:
        for batch in self.batches:
            x = batch.get("input") if isinstance(batch, Mapping) else None
            if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != self.dtype:
                batch = {**batch, "input": x.to(self.dtype)}
            yield batch


def _failed(row: Mapping[str, Score]) -> bool:
    return all(s.failed for s in row.values())


def _with_hint(reason: str, hint: str) -> str:
    """The library's "compute in float64" advice, pointed at the flag that does it."""
    return reason + hint if "float64" in reason else reason


def _hinted(row: Mapping[str, Score], hint: str) -> dict[str, Score]:
    return {k: Score.failure(_with_hint(s.note, hint)) for k, s in row.items()}


def _new_stem(folder: Path, methods: Sequence[str]) -> Path:
    """``folder/<time>-<methods>`` that names no earlier file (``-2``, ``-3`` ... within a second)."""
    tag = "all" if tuple(methods) == tuple(METHODS) else "_".join(methods)
    return rundir.new_stem(folder, f"{time.strftime('%Y%m%d-%H%M%S')}-{tag}")


def _layer_name(model: nn.Module, inputs: torch.Tensor) -> str | None:
    try:
        return default_cam_layer(model, inputs[:1])
    except ConfigError:
        return None


def _figure(
    model: nn.Module,
    chunk: Mapping[str, torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    methods: Sequence[str],
    layer: str | None,
    path: Path,
    class_names: Sequence[str] | None = None,
) -> Path | None:
    shown = {}
    for method in methods:  # one at a time: a method that fails on these examples leaves the others
        try:
            maps = explanation_maps(model, inputs, methods=(method,), layer=layer, targets=targets)[method]
        except AttnlabError:
            continue
        if isinstance(maps, torch.Tensor):
            shown[method] = maps
    if not shown or inputs.dim() not in (4, 5):
        return None
    images = inputs if inputs.dim() == 4 else inputs[:, :, inputs.shape[2] // 2]  # video: middle frame
    if inputs.dim() == 5:
        shown = {name: m[:, m.shape[1] // 2] for name, m in shown.items()}
    shown = {name: min_max_normalize(m.cpu()).float() for name, m in shown.items()}  # float64 maps too
    predicted = predicted_classes(model, inputs, None).cpu()
    labels = chunk.get("label")
    titles = class_titles(None if labels is None else labels.cpu(), predicted, class_names)
    return plot_overlays(images[:, :3].cpu().float(), shown, path, titles=titles)


def _write_reports(
    stem: Path, info: dict[str, Any], results: Mapping[str, Mapping[str, Score]], figure: Path | None
) -> tuple[Path, Path]:
    """``stem``.json and ``stem``.md (linking the figure beside them); returns both paths."""
    baselines = info["baselines"]
    layer = f" CAM layer: `{info['cam_layer']}`." if info["cam_layer"] else ""
    payload = {**info, "results": {m: {k: s.as_dict() for k, s in row.items()} for m, row in results.items()}}
    text = json.dumps(payload, indent=2, ensure_ascii=False)
    stem.parent.mkdir(parents=True, exist_ok=True)
    saved = stem.with_suffix(".json")
    atomic_write(saved, lambda f: f.write(text.encode()))
    lines = [
        f"# Explanation metrics: {info['model']} on {info['data']} ({info['split']} split)",
        "",
        f"Run `{info['run']}`, final weights ({info['dtype']}); {info['examples']} examples; maps explain "
        f"the {info['targets']} class.{layer} Deletion and insertion AUCs over "
        f"{info['steps']} steps (RISE), baselines {baselines['deletion']} and {baselines['insertion']}; "
        "mean ± std over examples.",
        "",
        markdown_table(results),
    ]
    if figure is not None:
        lines += [f"![Each method's map on test examples]({figure.name})", ""]
    report = stem.with_suffix(".md")
    atomic_write(report, lambda f: f.write("\n".join(lines).encode()))
    return report, saved
