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
  :mod:`attnlab.explain.points`);
- image GANs (DCGAN, MAD-GAN, the knowledge transfer graph): each generator's sample for a fixed
  latent code, the discriminator's softmax on each, and each generator's Q = mean_c F^2 at the
  tapped layers; StarGAN v2: a target digit translated into the source domain with seeded style
  codes, and the class-aware head's class of each translation and their mean;
- the GAN on 2-D points (ring of Gaussians): for seeded latent codes, the generator's points over the
  real test points on the discriminator's P(real) across the plane, and D's mean P(real) on each;
- SAM on cell images: for the first cells, the mask from the cell's box (or that box with a box
  error, on request), the true mask, both IoUs, each pass of iterative box refinement, and the mask
  token's attention over the image embedding in the decoder's token-to-image attentions.
- video question answering (Aloe on CLEVRER-lite): a question about a video with its choices, the
  answer's or each choice's probability, and the [CLS] token's attention per layer and head over
  the objects of each frame (heat matrices, and on the video where the objects' pixels are known)
  and over the words.
- reinforcement-learning agents (``runner: dqn`` / ``ppo``, :mod:`.agents`): the steps of the first
  test episode, each with the observation, the Q-values or the policy, the values and rewards (RND's
  intrinsic reward too), and an Action Q-Transformer's attention of each action query over the patches.

A run is loaded once (model, final weights, the first test examples) and kept until its weights
change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from attnlab.data.datamodule import DataModule
from attnlab.data.ssl_images import ViewBatch
from attnlab.data.uploads import ACCEPTS
from attnlab.errors import ConfigError, InputError, RunDirError
from attnlab.explorer.cache import RunCache
from attnlab.explorer.viewers.agents import load_agent, view_agent
from attnlab.explorer.viewers.base import MAX_EXAMPLES, LoadedRun, NotViewable
from attnlab.explorer.viewers.gan_points import point_examples, view_gan_points
from attnlab.explorer.viewers.gans import gan_examples, target_domain_examples, view_gan_images, view_stargan2
from attnlab.explorer.viewers.images import view_classification, view_dino, view_distillation, view_mae
from attnlab.explorer.viewers.points import view_detection
from attnlab.explorer.viewers.qa import qa_examples, view_qa
from attnlab.explorer.viewers.sam import cell_examples, view_sam
from attnlab.explorer.viewers.sequences import view_seq2seq
from attnlab.explorer.viewers.video import view_object_centric, view_vjepa
from attnlab.runs import rundir
from attnlab.runs.spec import resolve
from attnlab.runs.weights import load_initial_weights
from attnlab.train.classification import ClassificationTask
from attnlab.train.detection3d import Detection3DTask
from attnlab.train.dino import DINOTask
from attnlab.train.distill import DistillationTask
from attnlab.train.engine import build
from attnlab.train.gan import GANTask
from attnlab.train.gan_images import GANImagesTask
from attnlab.train.mae import MAETask
from attnlab.train.object_centric import ObjectCentricTask
from attnlab.train.sam import SamTask
from attnlab.train.seq2seq import Seq2SeqTask
from attnlab.train.stargan2 import StarGAN2Task
from attnlab.train.task import Task
from attnlab.train.video_qa import VideoQATask
from attnlab.train.vjepa import VJEPATask

__all__ = ["VIEWERS", "LoadedRun", "NotViewable", "ViewCache", "load_run"]


def load_run(folder: Path) -> LoadedRun:
    """The run's model with its final weights, in eval mode, and its first test examples."""
    run = rundir.existing(folder)
    if not run.weights.is_file():
        raise NotViewable(f"no final weights ({run.weights.name}) yet: the run has not finished")
    spec = resolve(run.config, [])
    if spec.task_name is None:  # a runner's agent (reinforcement learning): no task, no datamodule
        if spec.runner not in AGENT_VIEWERS:
            raise NotViewable(f"no viewer for runs of the {spec.runner} runner yet")
        return load_agent(run, spec)
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
    SamTask: cell_examples,
    GANImagesTask: gan_examples,
    GANTask: point_examples,
    StarGAN2Task: target_domain_examples,
    VideoQATask: qa_examples,
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
    SamTask: view_sam,
    GANImagesTask: view_gan_images,
    GANTask: view_gan_points,
    StarGAN2Task: view_stargan2,
    VideoQATask: view_qa,
}
# runs of a runner other than Lightning's (no task): the runner's name -> its agents' viewer
AGENT_VIEWERS: dict[str, Viewer] = {"dqn": view_agent, "ppo": view_agent}


class ViewCache:
    """Test examples and uploads of the runs loaded last (:class:`RunCache`).

    The server answers requests on several threads; one lock lets one view at a time use the
    models (hooks that record attention, the cache's order), which are not safe to share.
    """

    def __init__(self) -> None:
        self._runs = RunCache(_load_viewable)
        self._lock = threading.Lock()

    def view(self, folder: Path, index: int, method: str | None) -> dict[str, Any]:
        """Test example ``index`` of the run in ``folder``."""
        with self._lock:
            loaded = self._runs.get(folder)
            if not 0 <= index < len(loaded.examples):
                raise NotViewable(
                    f"example {index} is not among the {len(loaded.examples)} test examples shown"
                )
            return {"index": index, "count": len(loaded.examples)} | self._answer(
                loaded, loaded.examples[index], method
            )

    def view_upload(self, folder: Path, name: str, data: bytes, method: str | None) -> dict[str, Any]:
        """An uploaded file (a picture, video, signal or point cloud: :mod:`attnlab.data.uploads`),
        made an example as the run's datamodule makes its test examples (:meth:`DataModule.from_upload`)."""
        with self._lock:
            return self._view_upload(self._runs.get(folder), name, data, method)

    def _view_upload(self, loaded: LoadedRun, name: str, data: bytes, method: str | None) -> dict[str, Any]:
        example = loaded.data.from_upload(name, data)
        if loaded.data.upload in ("picture", "video") and loaded.examples:  # fixed sizes: check them
            for key, x in example.items():
                expected = loaded.examples[0][key].shape
                if x.shape != expected:
                    raise InputError(
                        f"the upload became {tuple(x.shape)} but this run's inputs are {tuple(expected)}"
                    )
        return {"index": None, "count": len(loaded.examples)} | self._answer(loaded, example, method)

    def _answer(
        self, loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None
    ) -> dict[str, Any]:
        """The viewer's answer, with the kind of file the run's uploads take (the page's file picker)."""
        kind = loaded.data.upload
        upload = {"upload": {"kind": kind, "accept": ACCEPTS[kind]}} if kind else {}
        return _viewer(loaded)(loaded, example, method) | upload


def _load_viewable(folder: Path) -> LoadedRun:
    try:
        return load_run(folder)
    except (RunDirError, ConfigError) as exc:  # a config or weights that no longer fit the code
        raise NotViewable(f"cannot load this run: {exc}") from None


def _viewer(loaded: LoadedRun) -> Viewer:
    if loaded.agent is not None:
        return AGENT_VIEWERS[loaded.agent.runner]
    return next(v for kind, v in VIEWERS.items() if isinstance(loaded.task, kind))
