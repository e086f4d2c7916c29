"""Training SAM on boxes of cells, and measuring it as seed 004 does.

Each step: the image encoder on the batch's images (under ``no_grad`` when the model freezes it;
then, on a finite training set such as a TIFF stack, each image is encoded once and its embedding
kept for the following epochs, as the thesis computes them once per image: ``cache_embeddings``),
then per image up to ``max_boxes`` of its cells' boxes, each jittered by ``train_jitter``
((fraction, probability) pairs; default the thesis's schedule
:data:`attnlab.models.sam.boxes.TRAIN_JITTER`; ``[[0.0, 1.0]]`` trains on exact boxes, as SAM's own
pre-training roughly did), decoded in one batch; the loss is SAM's
focal (20) + dice (1) + IoU-head MSE (:mod:`attnlab.objectives.sam`) between the single-output
mask logits, upscaled to the image (:meth:`Sam.postprocess`), and the cell's mask.

Evaluation: for every box error f in ``eval_jitter``, the mIoU over cells of the single-pass mask
(``miou_f{f}``), of the box itself filled as the mask (``box_miou_f{f}``, the floor) and, when
testing, of iterative inference (``iter_miou_f{f}``, mean passes ``iterations_f{f}``). Boxes are
jittered with a generator seeded by the batch's sample indices, so every evaluation sees the same
boxes. ``loss`` is the training loss at f = 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from attnlab.data.em_cells import CellBatch
from attnlab.errors import ConfigError
from attnlab.models.sam.boxes import (
    TRAIN_JITTER,
    check_jitter_schedule,
    jitter_boxes,
    sample_train_fractions,
)
from attnlab.models.sam.iterative import IterativeConfig, iterative_inference
from attnlab.models.sam.sam import Sam
from attnlab.models.sam.transforms import scale_boxes
from attnlab.models.sam.tuning import SamTuning
from attnlab.objectives.sam import mask_iou, sam_terms
from attnlab.runs.config import Optim
from attnlab.train.registry import register_task
from attnlab.train.sam_figures import plot_iterations
from attnlab.train.task import Task
from attnlab.train.vjepa import as_config


def boxes_as_masks(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """xyxy pixel-edge boxes (N, 4) -> filled masks (N, H, W) bool (pixels whose centre is inside)."""
    ys = torch.arange(size[0], device=boxes.device).float() + 0.5
    xs = torch.arange(size[1], device=boxes.device).float() + 0.5
    inside_y = (ys[None] > boxes[:, 1, None]) & (ys[None] < boxes[:, 3, None])  # (N, H)
    inside_x = (xs[None] > boxes[:, 0, None]) & (xs[None] < boxes[:, 2, None])  # (N, W)
    return inside_y[:, :, None] & inside_x[:, None, :]


@register_task("sam")
class SamTask(Task):
    """SAM on cell boxes; metrics per box error: ``miou_f*``, ``box_miou_f*``, ``iter_miou_f*``."""

    def __init__(
        self,
        *,
        model: nn.Module,
        optim: Optim,
        max_boxes: int = 16,
        eval_jitter: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4),
        iterative: IterativeConfig | None = None,
        train_jitter: tuple[tuple[float, float], ...] = TRAIN_JITTER,
        cache_embeddings: bool = True,
    ) -> None:
        super().__init__(model=model, optim=optim)
        if not isinstance(model, Sam | SamTuning):
            raise ConfigError(f"task sam trains a SAM model (sam-*), got {type(model).__name__}")
        if max_boxes < 1:
            raise ConfigError(f"task.max_boxes must be >= 1, got {max_boxes}")
        if any(not 0 <= f < 0.5 for f in eval_jitter):
            raise ConfigError(f"task.eval_jitter values must lie in [0, 0.5), got {list(eval_jitter)}")
        check_jitter_schedule(train_jitter, "task.train_jitter")
        self.max_boxes = max_boxes
        self.train_jitter = tuple((float(f), float(p)) for f, p in train_jitter)
        self.eval_jitter = tuple(eval_jitter)
        self.iterative = as_config(IterativeConfig, iterative or IterativeConfig(), "task.iterative")
        self.iterative.check()
        self.cache_embeddings = cache_embeddings
        self._cache: dict[int, torch.Tensor] = {}  # training image index -> its frozen embedding

    @property
    def sam(self) -> Sam:
        """The SAM that runs (a tuning set-up's inner one)."""
        if isinstance(self.model, SamTuning):
            return self.model.sam
        assert isinstance(self.model, Sam)
        return self.model

    def _embeddings(self, images: torch.Tensor) -> torch.Tensor:
        x, _ = self.sam.preprocess(images)
        if self.sam.config.freeze_image_encoder:
            with torch.no_grad():
                return self.sam.encode(x)
        return self.sam.encode(x)

    def _caching(self) -> bool:
        """A frozen encoder and a training set whose images come again (not generated afresh)."""
        data = getattr(self._trainer, "datamodule", None)  # None: loss_terms called without a Trainer
        if not self.cache_embeddings or not self.sam.config.freeze_image_encoder or data is None:
            return False
        return not getattr(data.dataset("train"), "procedural", False)

    def _train_embeddings(self, batch: CellBatch) -> torch.Tensor:
        """(B, C, h, w) embeddings of the batch's training images, from the cache where it has them."""
        if not self._caching():
            return self._embeddings(batch.images)
        keys = batch.index.tolist()
        new = [i for i, key in enumerate(keys) if key not in self._cache]
        if new:
            fresh = self._embeddings(batch.images[new])  # (len(new), C, h, w)
            self._cache.update({keys[i]: e for i, e in zip(new, fresh, strict=True)})
        return torch.stack([self._cache[key] for key in keys])

    def _logits(self, embedding: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int]) -> Any:
        out = self.sam.decode(embedding, boxes=scale_boxes(boxes, size, self.sam.config.img_size))
        return self.sam.postprocess(out.masks, size), out.iou_predictions  # (K, 1, H, W), (K, 1)

    def loss_terms(self, batch: CellBatch) -> dict[str, torch.Tensor]:
        size = (batch.images.shape[-2], batch.images.shape[-1])
        embeddings = self._train_embeddings(batch)
        gen = torch.Generator().manual_seed(
            int(torch.randint(2**31 - 1, ()))
        )  # from the engine's per-step seed
        logits, ious, targets = [], [], []
        for b, (masks, boxes) in enumerate(zip(batch.masks, batch.boxes, strict=True)):
            if boxes.shape[0] == 0:
                continue
            pick = torch.randperm(boxes.shape[0], generator=gen)[: self.max_boxes]
            fractions = sample_train_fractions(len(pick), gen, self.train_jitter)
            jittered = jitter_boxes(boxes[pick].cpu(), fractions, size, gen).to(boxes.device)
            low, iou = self._logits(embeddings[b : b + 1], jittered, size)
            logits.append(low)
            ious.append(iou)
            targets.append(masks[pick])
        return sam_terms(torch.cat(logits), torch.cat(ious), torch.cat(targets).float())

    @torch.no_grad()
    def metrics(self, batch: CellBatch) -> dict[str, torch.Tensor]:
        size = (batch.images.shape[-2], batch.images.shape[-1])
        embeddings = self._embeddings(batch.images)
        values: dict[str, list[torch.Tensor]] = {}
        for b, (masks, boxes) in enumerate(zip(batch.masks, batch.boxes, strict=True)):
            if boxes.shape[0] == 0:
                continue
            for f in self.eval_jitter:
                gen = torch.Generator().manual_seed(int(batch.index[b]) * 1_000 + round(100 * f))
                jittered = jitter_boxes(boxes.cpu(), f, size, gen).to(boxes.device)
                logits, iou = self._logits(embeddings[b : b + 1], jittered, size)
                if f == 0:
                    for name, term in sam_terms(logits, iou, masks.float()).items():
                        values.setdefault(name, []).append(term[None])
                values.setdefault(f"miou_f{f:g}", []).append(mask_iou(logits[:, 0], masks.float()))
                box_logits = boxes_as_masks(jittered, size).float() * 2 - 1  # the box as the mask: > 0 inside
                values.setdefault(f"box_miou_f{f:g}", []).append(mask_iou(box_logits, masks.float()))
                if self.trainer.testing:
                    result = iterative_inference(self.sam, batch.images[b], jittered, self.iterative)
                    refined = result.masks.float() * 2 - 1
                    values.setdefault(f"iter_miou_f{f:g}", []).append(mask_iou(refined, masks.float()))
                    values.setdefault(f"iterations_f{f:g}", []).append(
                        result.iterations.float().to(masks.device)
                    )
        out = {name: torch.cat(v).mean() for name, v in values.items()}
        if {"focal", "dice", "iou"} <= set(out):
            out["loss"] = out["focal"] + out["dice"] + out["iou"]
        return out

    @torch.no_grad()
    def report_figures(self, datamodule: L.LightningDataModule, out_dir: Path) -> dict[str, Path]:
        """Iterative inference on one test image with 30 % box error: boxes and masks per iteration."""
        batch = next(iter(datamodule.test_dataloader()))
        image, boxes = batch.images[0].to(self.device), batch.boxes[0][:8].to(self.device)
        size = (image.shape[-2], image.shape[-1])
        self.sam.eval()
        jittered = jitter_boxes(boxes.cpu(), 0.3, size, torch.Generator().manual_seed(0)).to(self.device)
        result = iterative_inference(self.sam, image, jittered, self.iterative)
        path = plot_iterations(image, result, out_dir / "iterations.png", "prompt boxes (30 % error)")
        caption = (
            "Iterative inference on a test image: the prompt boxes of each iteration, then the final masks"
        )
        return {caption: path}
