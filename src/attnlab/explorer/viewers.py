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
- LiDAR detection (PointPillars): the scene's points, the true and detected boxes, and on request
  a detected box's per-point explanation (Guided ODAM, ODAM, Guided Grad-CAM:
  :mod:`attnlab.explain.points`).

A run is loaded once (model, final weights, the first test examples) and kept until its weights
change.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from attnlab.data.datamodule import DataModule
from attnlab.data.kitti import lidar_box_corners
from attnlab.data.ssl_images import ViewBatch
from attnlab.errors import AttnlabError, ConfigError, InputError, RunDirError
from attnlab.explain.capture import attention_layers, capture
from attnlab.explain.maps import explanation_maps
from attnlab.explain.points import explain_boxes
from attnlab.explorer.cache import RunCache
from attnlab.explorer.pictures import png_url, rounded, unit
from attnlab.layers.attention import MultiHeadAttention
from attnlab.models.abn.st_abn import STABNOutput
from attnlab.models.outputs import ABNOutput, Detections3D
from attnlab.models.pointpillars.detector import PointPillars
from attnlab.models.seq2seq.gru_attention import GRUSeq2Seq
from attnlab.models.vit.mae import patchify, unpatchify
from attnlab.models.vjepa.encoder import check_clips
from attnlab.objectives.vjepa_masks import sample_masks
from attnlab.runs import rundir
from attnlab.runs.spec import resolve
from attnlab.runs.weights import load_initial_weights
from attnlab.train.classification import ClassificationTask
from attnlab.train.detection3d import Detection3DTask
from attnlab.train.dino import DINOTask
from attnlab.train.engine import build
from attnlab.train.mae import MAETask
from attnlab.train.object_centric import ObjectCentricTask
from attnlab.train.seq2seq import Seq2SeqTask
from attnlab.train.task import Task
from attnlab.train.vjepa import EVAL_MASK_SEED, VJEPATask

MAX_EXAMPLES = 32  # test examples a run offers to look at
CAM_METHODS = ("gradcam", "gradcam++", "hirescam", "layercam", "rollout")  # computed on request


class NotViewable(AttnlabError):
    """A run the explorer has no viewer for, or cannot load (said in one line on the page)."""


@dataclass
class LoadedRun:
    task: Task
    data: DataModule  # its from_picture makes an uploaded picture an input
    examples: list[dict[str, torch.Tensor]]  # one test example each, no batch dimension
    class_names: list[str] | None


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
    examples = _scenes(data) if isinstance(task, Detection3DTask) else _test_examples(data)
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


def _key_grid(keys: int, x: torch.Tensor) -> tuple[int, list[int]]:
    """How many leading keys to skip ([CLS]) and the (h, w) the rest form: a square grid of
    patches on an image, else one row per token of the input (the [CLS] dropped when there is one)."""
    if x.dim() == 3:  # (C, H, W)
        for skip in (1, 0):
            side = math.isqrt(keys - skip)
            if side > 1 and side * side == keys - skip:
                return skip, [side, side]
    skip = 1 if keys == x.shape[-1] + 1 else 0  # tokens or time steps are the last axis
    return skip, [1, keys - skip]


def _input_picture(x: torch.Tensor) -> dict[str, Any]:
    if x.dim() == 3 and x.shape[0] in (1, 3):
        return {"kind": "image", "png": png_url(x), "shape": list(x.shape[1:])}
    if x.dim() == 4:  # (T, C, H, W): a clip, drawn frame by frame
        return {"kind": "video", "frames": [png_url(frame) for frame in x], "shape": list(x.shape[2:])}
    rows = x[None] if x.dim() == 1 else x.reshape(-1, x.shape[-1])  # (C, L): a column per token or step
    return {"kind": "sequence", "png": png_url(rows), "shape": list(rows.shape)}


def view_classification(
    loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None
) -> dict[str, Any]:
    model, x = loaded.task.model, example["input"]
    # query-key attention only: other recording layers (ABN's branch heads) give maps, shown from
    # the output contract below
    layers = [
        name for name, layer in attention_layers(model).items() if isinstance(layer, MultiHeadAttention)
    ]
    with torch.no_grad():
        if layers:
            with capture(model, layers=layers) as record:
                out = model(x[None])
            weights = {name: record[name] for name in layers}
        else:
            out, weights = model(x[None]), {}
    probs = out.logits.softmax(-1)[0]
    top = probs.topk(min(3, probs.numel()))
    names = loaded.class_names

    def name(i: int) -> str:
        return names[i] if names and i < len(names) else str(i)

    maps: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    if isinstance(out, STABNOutput):  # x is (C, T, H, W): M_s per frame and M_t over the frames
        picture = {
            "kind": "video",
            "frames": [png_url(f) for f in x.transpose(0, 1)],
            "shape": list(x.shape[-2:]),
        }
        maps.append(
            {
                "smooth": True,  # a coarse map over the frame: drawn interpolated
                "name": "spatial attention M_s",
                "shape": list(out.spatial.shape[-2:]),
                "frames": [unit(m) for m in out.spatial[0]],
            }
        )
        extra["temporal"] = rounded(out.temporal[0])  # (T,) in [0, 1]: bars under the frames
    else:
        picture = _input_picture(x)
    if isinstance(out, ABNOutput):
        maps.append(
            {
                "name": "attention branch",
                "shape": list(out.attention.shape[-2:]),
                "heads": [unit(out.attention[0, 0])],
            }
        )
    for layer, w in weights.items():  # (B, heads, Q, K)
        rows = w[0, :, 0]  # (heads, K): the first query's
        skip, shape = _key_grid(rows.shape[-1], x)
        maps.append({"name": layer, "shape": shape, "heads": [unit(r[skip:]) for r in rows]})
    if method is not None:
        made = explanation_maps(model, x[None], methods=[method])[method]
        if isinstance(made, str):
            raise NotViewable(f"{method} does not apply here: {made}")
        maps.insert(0, {"name": method, "shape": list(made.shape[-2:]), "heads": [unit(made[0])]})
    label = example.get("label")
    return extra | {
        "input": picture,
        "prediction": [
            {"label": name(int(i)), "p": round(float(p), 4)}
            for p, i in zip(top.values, top.indices, strict=True)
        ],
        "target": None if label is None else name(int(label)),
        "maps": maps,
        "methods": list(CAM_METHODS) if picture["kind"] == "image" else [],
    }


def view_object_centric(
    loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None
) -> dict[str, Any]:
    if method is not None:
        raise NotViewable("CAM methods explain class scores; an object-centric model has none")
    if "video" not in example:
        raise NotViewable(
            "an object-centric model takes videos; upload a picture to an image classifier's run"
        )
    video = example["video"]  # (T, 3, H, W)
    with torch.no_grad():
        out = loaded.task.model(video[None])
    masks = out.masks[0, :, :, 0]  # (T, K, H, W)
    return {
        "input": {"kind": "video", "frames": [png_url(f) for f in video], "shape": list(video.shape[-2:])},
        "recon": [png_url(f.clamp(0, 1)) for f in out.recon[0]],
        "prediction": [],
        "target": None,
        "maps": [
            {
                "name": f"slot {k}",
                "shape": list(masks.shape[-2:]),
                "frames": [rounded(m) for m in masks[:, k]],
            }
            for k in range(masks.shape[1])
        ],
        "methods": [],
    }


MAX_POINTS = 20_000  # points sent to the page (an even subsample of larger scenes)
POINT_METHODS = ("guided-odam", "odam", "guided-gradcam")


def _boxes(
    boxes: torch.Tensor, labels: torch.Tensor, names: list[str] | None, scores: torch.Tensor | None = None
) -> list[dict[str, Any]]:
    """Boxes as the page draws them: 8 corners each (z from the bottom), class, score."""
    corners = lidar_box_corners(boxes.detach().cpu().double().numpy())  # (M, 8, 3)
    return [
        {
            "corners": np.round(c, 2).tolist(),
            "label": names[int(k)] if names else str(int(k)),
            "score": None if scores is None else round(float(scores[i]), 4),
        }
        for i, (c, k) in enumerate(zip(corners, labels, strict=True))
    ]


def view_detection(loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None) -> dict[str, Any]:
    """A LiDAR scene: its points, the ground-truth boxes and the detections; with ``method``
    "<map> <box>" (e.g. "guided-odam 0") the per-point explanation of that detected box."""
    if "points" not in example:
        raise NotViewable(
            "a LiDAR detector takes point clouds; upload a picture to an image classifier's run"
        )
    model, cloud = loaded.task.model, example["points"]
    assert isinstance(model, PointPillars)  # the detection3d task's model
    with torch.no_grad():
        found = model([cloud]).detections
    assert found is not None  # eval mode
    (detections,) = found
    keep = torch.linspace(0, len(cloud) - 1, min(len(cloud), MAX_POINTS)).round().long()  # (P,)
    maps = []
    if method is not None:
        name, _, box = method.partition(" ")
        if name not in POINT_METHODS or not box.isdigit() or int(box) >= len(detections.labels):
            choices = (
                f"a map ({', '.join(POINT_METHODS)}) and one of the {len(detections.labels)} detected boxes"
            )
            raise NotViewable(f"pick {choices}")
        one = Detections3D(
            *(getattr(detections, f.name)[int(box) : int(box) + 1] for f in fields(Detections3D))
        )
        explained = explain_boxes(model, cloud, one, methods=(name,))
        maps.append({"name": f"{name}, box {box}", "values": unit(explained.maps[name][0][keep])})
    names = loaded.class_names
    return {
        "input": {
            "kind": "points",
            "points": np.round(cloud[keep, :3].cpu().numpy(), 2).tolist(),
            "truth": _boxes(example["boxes"], example["labels"], names),
            "detections": _boxes(detections.boxes, detections.labels, names, detections.scores),
        },
        "prediction": [],
        "target": None,
        "maps": maps,
        "methods": list(POINT_METHODS),
    }


def _token_frames(values: torch.Tensor, grid: tuple[int, int, int], tubelet: int) -> list[list[float]]:
    """One value per token of a (t, h, w) grid as per-frame maps: each tubelet's frames share it."""
    per_frame = values.view(*grid).repeat_interleave(tubelet, dim=0)  # (T, h, w)
    return [rounded(frame) for frame in per_frame]


def view_vjepa(loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None) -> dict[str, Any]:
    """A clip with each mask type's multi-block mask as the evaluation draws it (seeded as the
    validation loss's): the context tokens the encoder sees (0.4), the target tokens the
    predictor must fill in (1), the rest (0); and the L1 error of each predicted target token."""
    if method is not None:
        raise NotViewable("CAM methods explain class scores; V-JEPA predicts features")
    if "input" not in example:
        raise NotViewable("V-JEPA takes clips; upload a picture to an image classifier's run")
    task = loaded.task
    assert isinstance(task, VJEPATask)
    clip = example["input"][None]  # (1, C, T, H, W)
    config = task.vjepa.config
    grid = check_clips(clip, config.encoder())
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(EVAL_MASK_SEED)
        masks_enc, masks_pred = sample_masks(grid, task.masks, 1, step=0)
        out = task.vjepa(clip, masks_enc, masks_pred)
    tokens = math.prod(grid)
    maps = []
    for i, ((pred, target), enc, tgt) in enumerate(zip(out.per_mask(), masks_enc, masks_pred, strict=True)):
        layout = torch.zeros(tokens)
        layout[enc[0]] = 0.4
        layout[tgt[0]] = 1.0
        error = torch.zeros(tokens)
        error[tgt[0]] = (pred[0] - target[0]).abs().mean(-1)  # (Nt,) L1 per target token
        maps.append(
            {
                "name": f"mask {i}: context, target",
                "shape": list(grid[1:]),
                "frames": _token_frames(layout, grid, config.tubelet_size),
            }
        )
        scaled = error / error.max().clamp_min(1e-12)
        maps.append(
            {
                "name": f"mask {i}: prediction error (L1, scaled)",
                "shape": list(grid[1:]),
                "frames": _token_frames(scaled, grid, config.tubelet_size),
            }
        )
    video = clip[0].transpose(0, 1)  # (T, C, H, W)
    return {
        "input": {"kind": "video", "frames": [png_url(f) for f in video], "shape": list(video.shape[-2:])},
        "prediction": [],
        "target": None,
        "maps": maps,
        "methods": [],
    }


def view_dino(loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None) -> dict[str, Any]:
    """The teacher's last-block attention from [CLS] to every patch, per head (DINO's figures)."""
    if method is not None:
        raise NotViewable("CAM methods explain class scores; DINO learns without classes")
    task = loaded.task
    assert isinstance(task, DINOTask)
    x = example["input"]  # (C, H, W)
    with torch.no_grad():
        attention = task.dino.backbone().cls_attention(x[None])[0]  # (heads, h, w)
    label = example.get("label")
    names = loaded.class_names
    return {
        "input": _input_picture(x),
        "prediction": [],
        "target": None if label is None else (names[int(label)] if names else str(int(label))),
        "maps": [
            {
                "name": "teacher, last block: [CLS] to patches",
                "shape": list(attention.shape[-2:]),
                "heads": [unit(a) for a in attention],
            }
        ],
        "methods": [],
    }


def view_mae(loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None) -> dict[str, Any]:
    """The image, the patches the encoder sees (the removed ones grey), the decoder's
    reconstruction with the seen patches pasted back (MAE's figures), and the error per patch.
    With ``norm_pix_loss`` the predictions are per-patch normalised pixels; each is shown with its
    patch's own mean and standard deviation, as the paper's figures show them."""
    if method is not None:
        raise NotViewable("CAM methods explain class scores; MAE reconstructs pixels")
    task = loaded.task
    assert isinstance(task, MAETask)
    mae, x = task.mae, example["input"]
    p = mae.config.patch_size
    grid = (x.shape[-2] // p, x.shape[-1] // p)
    noise = torch.rand(
        1, grid[0] * grid[1], generator=torch.Generator().manual_seed(0)
    )  # the same mask each time
    with torch.no_grad():
        out = mae(x[None], noise=noise)
    patches = patchify(x[None], p)  # (1, L, p*p*C)
    pred = out.pred
    if mae.config.norm_pix_loss:
        pred = pred * (patches.var(-1, keepdim=True) + 1e-6).sqrt() + patches.mean(-1, keepdim=True)
    removed = out.mask[..., None].bool()  # (1, L, 1)
    masked = torch.where(removed, torch.full_like(patches, float(patches.mean())), patches)
    pasted = torch.where(removed, pred, patches)
    error = (out.pred - out.target).square().mean(-1) * out.mask  # (1, L): on removed patches
    gone = int(out.mask.sum())
    picture = _input_picture(x)
    return {
        "input": picture,
        "pictures": [
            {
                "caption": f"what the encoder sees ({gone} of {out.mask.numel()} patches gone)",
                "png": png_url(unpatchify(masked, p, grid)[0]),
            },
            {
                "caption": "reconstruction, seen patches pasted back",
                "png": png_url(unpatchify(pasted, p, grid)[0]),
            },
        ],
        "prediction": [],
        "target": None,
        "maps": [{"name": "squared error per removed patch", "shape": list(grid), "heads": [unit(error[0])]}],
        "methods": [],
    }


SPECIAL = {0: "PAD", 1: "BOS", 2: "EOS"}  # attnlab.data.reversal's token ids; words are their ids


def _words(tokens: torch.Tensor) -> list[str]:
    return [SPECIAL.get(int(t), str(int(t))) for t in tokens]


def view_seq2seq(loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None) -> dict[str, Any]:
    """The attention of forced decoding of the reference as a target x source matrix (rows sum to
    1), the known alignment beside it, and the greedy output."""
    if method is not None:
        raise NotViewable("CAM methods explain class scores; a sequence model's attention is its alignment")
    if "source" not in example:
        raise NotViewable(
            "a sequence model takes token sequences; upload a picture to an image classifier's run"
        )
    task, model = loaded.task, loaded.task.model
    assert isinstance(task, Seq2SeqTask) and isinstance(model, GRUSeq2Seq)  # the seq2seq task's model
    batch = {k: v[None] for k, v in example.items()}
    with torch.no_grad():
        _, weights = task.forced_attention(batch)
        decoded = model.generate(batch["source"], batch["source_mask"], batch["target"].shape[1])[0]
    if weights is None:
        raise NotViewable("this sequence model has no attention to show (seq2seq-none)")
    S = int((~example["source_mask"]).sum())  # the source's words
    T = int((~example["target_mask"]).sum())  # the target up to and with EOS
    known = torch.zeros(T, S)
    aligned = example["alignment"][:T]
    rows = torch.nonzero(aligned >= 0).flatten()
    known[rows, aligned[rows]] = 1.0
    ends = (decoded == 2).nonzero()  # EOS
    output = decoded[: int(ends[0]) + 1] if len(ends) else decoded
    return {
        "input": {
            "kind": "matrix",
            "rows": _words(example["target"][:T]),
            "cols": _words(example["source"][:S]),
        },
        "prediction": [{"label": " ".join(_words(output)), "p": None}],
        "target": " ".join(_words(example["target"][:T])),
        "maps": [
            {"name": "attention, forced decoding", "shape": [T, S], "heads": [rounded(weights[0, :T, :S])]},
            {"name": "known alignment", "shape": [T, S], "heads": [rounded(known)]},
        ],
        "methods": [],
    }


VIEWERS: dict[type[Task], Callable[[LoadedRun, dict[str, torch.Tensor], str | None], dict[str, Any]]] = {
    ClassificationTask: view_classification,
    ObjectCentricTask: view_object_centric,
    Seq2SeqTask: view_seq2seq,
    Detection3DTask: view_detection,
    VJEPATask: view_vjepa,
    DINOTask: view_dino,
    MAETask: view_mae,
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


def _viewer(loaded: LoadedRun) -> Callable[[LoadedRun, dict[str, torch.Tensor], str | None], dict[str, Any]]:
    return next(v for kind, v in VIEWERS.items() if isinstance(loaded.task, kind))


MAX_UPLOAD_BYTES = 5 * 1024 * 1024
PICTURE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")


def read_picture(data: bytes) -> np.ndarray:
    """Uploaded bytes as (H, W, 3) uint8 RGB; one line for anything else or anything too big."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(
            f"the upload is {len(data) / 2**20:.1f} MiB; pictures up to {MAX_UPLOAD_BYTES // 2**20} MiB"
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in PICTURE_FORMATS:
                raise InputError(
                    f"unsupported upload type {image.format}: PNG, JPEG, GIF, BMP or WebP pictures"
                )
            if image.width * image.height > 4096 * 4096:
                raise InputError(f"the picture is {image.width}x{image.height} pixels; at most 4096x4096")
            return np.asarray(image.convert("RGB"))
    except (OSError, Image.DecompressionBombError):
        raise InputError("unsupported upload type: not a PNG, JPEG, GIF, BMP or WebP picture") from None
