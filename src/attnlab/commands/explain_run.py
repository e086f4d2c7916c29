"""``attnlab explain RUN_DIR``: score explanation methods on a finished run's test split.

:func:`explain_run` builds the run's model and data through the engine, loads its
final weights, scores every method with
:func:`attnlab.explain.scoring.evaluate_explanations` and writes
``explanations.json``, ``explanations.md`` and ``figures/explanations.png``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attnlab.errors import ConfigError, RunDirError, unknown
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
from attnlab.explain.render import overlay_grid
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
from attnlab.runs.spec import resolve
from attnlab.runs.weights import load_initial_weights
from attnlab.train.engine import build


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
) -> Path:
    """Explain a finished run's final weights on its test split; returns ``explanations.md``'s path.

    Writes ``explanations.json``, ``explanations.md`` (the table of
    :func:`markdown_table`) and ``figures/explanations.png`` (``figure_examples``
    test examples, each method's map; a video's middle frame) into the run folder,
    or into ``out``, replacing earlier ones. ``device``: default CUDA when
    available. Other arguments as :func:`evaluate_explanations`."""
    check_methods(methods, {})  # before the model and the data are built
    check_metrics(metrics)
    if targets not in TARGETS:
        raise unknown("targets", targets, TARGETS)
    if regions not in REGIONS:
        raise unknown("regions", regions, REGIONS)
    run = rundir.existing(Path(run_dir))
    if not run.weights.is_file():
        raise RunDirError(f"{run.path} has no final weights {run.weights.name} (unfinished run?)")
    spec = resolve(run.config, [])
    task, data = build(spec)
    model = task.model
    load_initial_weights(model, run.weights)
    model.to(torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))).eval()
    loader = data.test_dataloader()
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
    folder = Path(out) if out is not None else run.path
    first = next(example_chunks(loader, max(1, figure_examples), max(1, figure_examples)))
    inputs = first["input"].to(model_device(model))
    uses_layer = any(m in CAM_METHODS or m == "guided-gradcam" for m in methods)
    used_layer = (layer or _layer_name(model, inputs)) if uses_layer else None
    chosen = batch_targets(model, first, inputs, targets, None)
    figure = _figure(model, first, inputs, chosen, methods, layer, folder / "figures" / "explanations.png")
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
    }
    return _write_reports(folder, info, results, figure)


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
) -> Path | None:
    maps = explanation_maps(model, inputs, methods=methods, layer=layer, targets=targets)
    shown = {name: m for name, m in maps.items() if isinstance(m, torch.Tensor)}
    if not shown or inputs.dim() not in (4, 5):
        return None
    images = inputs if inputs.dim() == 4 else inputs[:, :, inputs.shape[2] // 2]  # video: middle frame
    if inputs.dim() == 5:
        shown = {name: m[:, m.shape[1] // 2] for name, m in shown.items()}
    shown = {name: min_max_normalize(m.float().cpu()) for name, m in shown.items()}
    predicted = predicted_classes(model, inputs, None).cpu()
    labels = chunk.get("label")
    titles = [
        f"pred {int(p)}" + ("" if labels is None else f" / true {int(labels[i])}")
        for i, p in enumerate(predicted)
    ]
    return overlay_grid(images[:, :3].cpu(), shown, path, titles=titles)


def _write_reports(
    folder: Path, info: dict[str, Any], results: Mapping[str, Mapping[str, Score]], figure: Path | None
) -> Path:
    baselines = info["baselines"]
    layer = f" CAM layer: `{info['cam_layer']}`." if info["cam_layer"] else ""
    payload = {**info, "results": {m: {k: s.as_dict() for k, s in row.items()} for m, row in results.items()}}
    text = json.dumps(payload, indent=2, ensure_ascii=False)
    atomic_write(folder / "explanations.json", lambda f: f.write(text.encode()))
    lines = [
        f"# Explanation metrics: {info['model']} on {info['data']} ({info['split']} split)",
        "",
        f"Run `{info['run']}`, final weights; {info['examples']} examples; maps explain the "
        f"{info['targets']} class.{layer} Deletion and insertion AUCs over "
        f"{info['steps']} steps (RISE), baselines {baselines['deletion']} and {baselines['insertion']}; "
        "mean ± std over examples.",
        "",
        markdown_table(results),
    ]
    if figure is not None:
        lines += [f"![Each method's map on test examples]({figure.relative_to(folder).as_posix()})", ""]
    report = folder / "explanations.md"
    atomic_write(report, lambda f: f.write("\n".join(lines).encode()))
    return report
