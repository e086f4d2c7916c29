"""Viewers of video models: object-centric slots per frame, V-JEPA's masks and prediction error."""

from __future__ import annotations

import math
from typing import Any

import torch

from attnlab.explorer.pictures import png_url, rounded
from attnlab.explorer.viewers.base import LoadedRun, NotViewable
from attnlab.models.vjepa.encoder import check_clips
from attnlab.objectives.vjepa_masks import sample_masks
from attnlab.train.vjepa import EVAL_MASK_SEED, VJEPATask


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
