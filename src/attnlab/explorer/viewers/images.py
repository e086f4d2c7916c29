"""Viewers of image models: classifiers, ABN and ST-ABN (attention layers, branch maps, CAM methods
on request), DINO (the teacher's [CLS] attention per head), MAE (what the encoder sees, the
reconstruction) and multi-teacher distillation (the student's and teachers' attention)."""

from __future__ import annotations

import math
from typing import Any

import torch

from attnlab.explain.capture import attention_layers, capture
from attnlab.explain.maps import explanation_maps
from attnlab.explorer.pictures import png_url, rounded, unit
from attnlab.explorer.viewers.base import LoadedRun, NotViewable, input_picture
from attnlab.layers.attention import MultiHeadAttention
from attnlab.models.abn.st_abn import STABNOutput
from attnlab.models.outputs import ABNOutput
from attnlab.models.signals.san1d import SAN1D
from attnlab.models.vit.distill import Distillation
from attnlab.models.vit.mae import patchify, unpatchify
from attnlab.train.dino import DINOTask
from attnlab.train.mae import MAETask
from attnlab.train.signals import attention_along

CAM_METHODS = ("gradcam", "gradcam++", "hirescam", "layercam", "rollout")  # computed on request


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
        picture = input_picture(x)
    if isinstance(out, ABNOutput):
        maps.append(
            {
                "name": "attention branch",
                "shape": list(out.attention.shape[-2:]),
                "heads": [unit(out.attention[0, 0])],
            }
        )
    if isinstance(model, SAN1D) and not model.fft:  # pairwise attention: what each step receives
        along = attention_along(model, x)  # (blocks, L)
        maps += [
            {"name": f"block {b + 1}: attention received", "shape": [1, len(a)], "heads": [unit(a)]}
            for b, a in enumerate(along)
        ]
    for layer, w in weights.items():  # (B, heads, Q, K)
        rows = w[0, :, 0]  # (heads, K): the first query's
        skip, shape = _key_grid(rows.shape[-1], x)
        maps.append({"name": layer, "shape": shape, "heads": [unit(r[skip:]) for r in rows]})
    if method is not None:
        made = explanation_maps(model, x[None], methods=[method])[method]
        if isinstance(made, str):
            raise NotViewable(f"{method} does not apply here: {made}")
        maps.insert(0, {"name": method, "shape": list(made.shape[-2:]), "heads": [unit(made[0])]})
    return extra | {
        "input": picture,
        "prediction": loaded.top_classes(out.logits),
        "target": loaded.target(example),
        "maps": maps,
        "methods": list(CAM_METHODS) if picture["kind"] == "image" else [],
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
    return {
        "input": input_picture(x),
        "prediction": [],
        "target": loaded.target(example),
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
    picture = input_picture(x)
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


def view_distillation(
    loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None
) -> dict[str, Any]:
    """The student's and both teachers' predictions and their last-block [CLS] attention per head:
    what attention distillation transfers (docs/distillation.md)."""
    if method is not None:
        raise NotViewable("CAM methods are shown for single classifiers; here the three models' attention")
    model, x = loaded.task.model, example["input"]
    assert isinstance(model, Distillation)  # the distillation task's model
    parts = (
        ("student", model.student.vit),
        ("teacher 1", model.teacher1.backbone),
        ("teacher 2", model.teacher2.backbone),
    )
    with torch.no_grad():
        out = model(x[None])
        maps = [
            {"name": f"{name}: [CLS] to patches", "shape": list(a.shape[-2:]), "heads": [unit(h) for h in a]}
            for name, vit in parts
            for a in [vit.cls_attention(x[None])[0]]  # (heads, h, w)
        ]
    each = (("student", out.logits), ("teacher 1", out.teacher1_logits), ("teacher 2", out.teacher2_logits))
    return {
        "input": input_picture(x),
        "prediction": [loaded.top_classes(logits, 1, f"{name}: ")[0] for name, logits in each],
        "target": loaded.target(example),
        "maps": maps,
        "methods": [],
    }
