"""What the explorer shows of one test example of a finished run: its input, the prediction and
the model's attention. One viewer per kind of task (the plug-in point: :data:`VIEWERS`), each
returning plain JSON the page draws:

- classification (classifiers, ABN, ST-ABN, signal networks): the prediction, the attention
  branch's map (ABN; ST-ABN's spatial map per frame and its temporal weights), each recorded
  attention layer's weights of the first query ([CLS]) per head, on the image grid when the keys
  form one, and CAM-family maps on request (images);
- object-centric video models: the frames, the reconstruction and each slot's mask per frame;
- sequence to sequence: the attention of forced decoding as a target x source matrix beside the
  known alignment, and the greedy output;
- DINO: the teacher's last-block [CLS] attention per head, over the image;
- MAE: the image, what the encoder sees, the reconstruction with the seen patches pasted back,
  and the error per removed patch;
- V-JEPA: a clip with each mask type's context and target tokens and the predictor's error per
  target token;
- multi-teacher distillation: the student's and both teachers' predictions and [CLS] attention;
- LiDAR detection (PointPillars): the scene's points, the true and detected boxes, and on request
  a detected box's per-point explanation (Guided ODAM, ODAM, Guided Grad-CAM:
  :mod:`attnlab.explain.points`).

A run is loaded once (model, final weights, the first test examples) and kept until its weights
change.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from attnlab.data.datamodule import DataModule
from attnlab.data.ssl_images import ViewBatch
from attnlab.errors import ConfigError, InputError, RunDirError
from attnlab.explorer.cache import RunCache
from attnlab.explorer.viewers.base import MAX_EXAMPLES, LoadedRun, NotViewable
from attnlab.explorer.viewers.images import view_classification, view_dino, view_distillation, view_mae
from attnlab.explorer.viewers.points import view_detection
from attnlab.explorer.viewers.sequences import view_seq2seq
from attnlab.explorer.viewers.uploads import read_picture
from attnlab.explorer.viewers.video import view_object_centric, view_vjepa
from attnlab.runs import rundir
from attnlab.runs.spec import resolve
from attnlab.runs.weights import load_initial_weights
from attnlab.train.classification import ClassificationTask
from attnlab.train.detection3d import Detection3DTask
from attnlab.train.dino import DINOTask
from attnlab.train.distill import DistillationTask
from attnlab.train.engine import build
from attnlab.train.mae import MAETask
from attnlab.train.object_centric import ObjectCentricTask
from attnlab.train.seq2seq import Seq2SeqTask
from attnlab.train.task import Task
from attnlab.train.vjepa import VJEPATask

__all__ = ["VIEWERS", "LoadedRun", "NotViewable", "ViewCache", "load_run", "read_picture"]


def load_run(folder: Path) -> LoadedRun:
    """The run's model with its final weights, in eval mode, and its first test examples."""
    run = rundir.existing(folder)
    if not run.weights.is_file():
        raise NotViewable(f"no final weights ({run.weights.name}) yet: the run has not finished")
    spec = resolve(run.config, [])
    task, data = build(spec)
    if not any(isinstance(task, kind) for kind in VIEWERS):
        raise NotViewable(f"no attention viewer for the {spec.task_name} task yet")
    load_initial_weights(task.model, run.weights)
    task.model.eval()
    pick = next((f for kind, f in EXAMPLES.items() if isinstance(task, kind)), _test_examples)
    examples = pick(data)
    names = getattr(data, "class_names", None)
    return LoadedRun(task, data, examples[:MAX_EXAMPLES], list(names) if names else None)


def _test_examples(data: DataModule) -> list[dict[str, torch.Tensor]]:
    """The first test examples, one dict each, as the test loader batches them (padding, masks)."""
    examples: list[dict[str, torch.Tensor]] = []
    for batch in data.test_dataloader():
        if isinstance(batch, ViewBatch):  # self-supervised image batches: the plain images
            batch = {"input": batch.images, "label": batch.label}
        size = len(next(iter(batch.values())))
        examples += [{k: v[i] for k, v in batch.items() if isinstance(v, torch.Tensor)} for i in range(size)]
        if len(examples) >= MAX_EXAMPLES:
            break
    return examples[:MAX_EXAMPLES]


def _scenes(data: DataModule) -> list[dict[str, torch.Tensor]]:
    """The first LiDAR test scenes: points (N, 4), boxes (M, 7) and labels (M,) of the classes."""
    test = data.dataset("test")
    count = min(MAX_EXAMPLES, len(test))  # type: ignore[arg-type]
    scenes = [test[i] for i in range(count)]
    return [{"points": s.points, "boxes": s.boxes, "labels": s.labels} for s in scenes]  # type: ignore[attr-defined]


# where a task's examples are not its test loader's batches: (the datamodule) -> examples
EXAMPLES: dict[type[Task], Callable[[DataModule], list[dict[str, torch.Tensor]]]] = {
    Detection3DTask: _scenes,
}

# (the loaded run, one example, a method asked for or None) -> what the page draws
Viewer = Callable[[LoadedRun, dict[str, torch.Tensor], str | None], dict[str, Any]]
VIEWERS: dict[type[Task], Viewer] = {
    ClassificationTask: view_classification,
    ObjectCentricTask: view_object_centric,
    Seq2SeqTask: view_seq2seq,
    Detection3DTask: view_detection,
    VJEPATask: view_vjepa,
    DINOTask: view_dino,
    MAETask: view_mae,
    DistillationTask: view_distillation,
}


class ViewCache:
    """Test examples and uploads of the runs loaded last (:class:`RunCache`)."""

    def __init__(self) -> None:
        self._runs = RunCache(_load_viewable)

    def load(self, folder: Path) -> LoadedRun:
        return self._runs.get(folder)

    def view(self, folder: Path, index: int, method: str | None) -> dict[str, Any]:
        """Test example ``index`` of the run in ``folder``."""
        loaded = self.load(folder)
        if not 0 <= index < len(loaded.examples):
            raise NotViewable(f"example {index} is not among the {len(loaded.examples)} test examples shown")
        return {"index": index, "count": len(loaded.examples)} | _viewer(loaded)(
            loaded, loaded.examples[index], method
        )

    def view_upload(self, folder: Path, picture: bytes, method: str | None) -> dict[str, Any]:
        """An uploaded picture (PNG, JPEG, GIF, BMP or WebP bytes), made an input as the run's
        datamodule makes its test images (:meth:`DataModule.from_picture`)."""
        loaded = self.load(folder)
        x = loaded.data.from_picture(read_picture(picture))
        expected = (
            loaded.examples[0]["input"].shape if loaded.examples and "input" in loaded.examples[0] else None
        )
        if expected is not None and x.shape != expected:
            raise InputError(
                f"the picture became {tuple(x.shape)} but this run's inputs are {tuple(expected)}"
            )
        return {"index": None, "count": len(loaded.examples)} | _viewer(loaded)(loaded, {"input": x}, method)


def _load_viewable(folder: Path) -> LoadedRun:
    try:
        return load_run(folder)
    except (RunDirError, ConfigError) as exc:  # a config or weights that no longer fit the code
        raise NotViewable(f"cannot load this run: {exc}") from None


def _viewer(loaded: LoadedRun) -> Viewer:
    return next(v for kind, v in VIEWERS.items() if isinstance(loaded.task, kind))
