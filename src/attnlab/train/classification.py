"""Classification: cross-entropy, accuracy, confusion matrix and attention pictures.

Batches are dicts with ``input`` and ``label``; a dataset may add ``evidence``,
the index of the input token that decides the label. Then the task also reports,
per attention layer, ``attn_hit/<layer>``: how often that layer's first query
(the [CLS] token of the usual classifiers) puts its largest head-averaged weight
on that token.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import ConfigError
from attnlab.explain.capture import AttentionRecord, attention_layers, capture
from attnlab.runs.config import OptimConfig
from attnlab.train.figures import (
    class_titles,
    plot_attention_maps,
    plot_attention_rows,
    plot_confusion,
    plot_video_attention,
)
from attnlab.train.registry import register_task
from attnlab.train.task import Batch, Task


@register_task("classification")
class ClassificationTask(Task):
    """Single-label classification with cross-entropy."""

    monitor = "val/acc"
    monitor_mode = "max"

    def __init__(self, *, model: nn.Module, optim: OptimConfig, label_smoothing: float = 0.0) -> None:
        super().__init__(model=model, optim=optim)
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"task.label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def setup(self, stage: str) -> None:
        data_classes = getattr(self.trainer.datamodule, "num_classes", None)
        model_classes = getattr(getattr(self.model, "config", None), "num_classes", None)
        if None not in (data_classes, model_classes) and data_classes != model_classes:
            raise ConfigError(
                f"the dataset has {data_classes} classes but the model predicts {model_classes}; "
                f"set --model.num_classes {data_classes}"
            )

    def loss_terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        logits = self.model(batch["input"]).logits
        return {"ce": F.cross_entropy(logits, batch["label"], label_smoothing=self.label_smoothing)}

    def metrics(self, batch: Batch) -> dict[str, torch.Tensor]:
        layers = list(attention_layers(self.model)) if "evidence" in batch else []
        hits = {}
        if layers:
            with capture(self.model) as rec:
                logits = self.model(batch["input"]).logits
            hits = {f"attn_hit/{name}": _evidence_hits(rec[name], batch).float().mean() for name in layers}
        else:
            logits = self.model(batch["input"]).logits
        self._remember(batch, logits)
        return {
            "acc": (logits.argmax(-1) == batch["label"]).float().mean(),
            "loss": F.cross_entropy(logits, batch["label"], label_smoothing=self.label_smoothing),
        } | hits

    def on_test_epoch_start(self) -> None:
        self._test_predictions: list[tuple[torch.Tensor, torch.Tensor]] = []

    def _remember(self, batch: Batch, logits: torch.Tensor) -> None:
        """Keep test predictions for the confusion matrix: no second pass over the test set."""
        if self.trainer.testing:
            self._test_predictions.append((batch["label"].cpu(), logits.detach().argmax(-1).cpu()))

    @torch.no_grad()
    def report_figures(self, datamodule: L.LightningDataModule, out_dir: Path) -> dict[str, Path]:
        self.model.eval()
        figures = {}
        if getattr(self, "_test_predictions", None):
            labels, preds = (torch.cat(parts) for parts in zip(*self._test_predictions, strict=True))
            names = getattr(datamodule, "class_names", None)
            path = out_dir / "confusion.png"
            figures["Confusion matrix (test set)"] = plot_confusion(labels, preds, path, names)
        layers = list(attention_layers(self.model))
        if layers:
            sample = next(iter(datamodule.test_dataloader()))
            sample = {k: v[:8].to(self.device) for k, v in sample.items()}
            with capture(self.model) as rec:
                out = self.model(sample["input"])
            logits = getattr(out, "logits", None)
            preds = logits.argmax(-1).cpu() if isinstance(logits, torch.Tensor) else None
            labels = sample["label"].cpu() if "label" in sample else None
            titles = class_titles(labels, preds, getattr(datamodule, "class_names", None))
            figures |= _attention_figures(rec, layers, sample, titles, out_dir)
        return figures


def _attention_figures(
    rec: AttentionRecord, layers: list[str], sample: Batch, titles: list[str], out_dir: Path
) -> dict[str, Path]:
    """Sequences: the first query's weights per layer. Images: spatial maps over the images."""
    inputs = sample["input"]
    if inputs.dim() == 2:  # tokens (B, L)
        rows = {name: rec[name][:, :, 0].mean(1).cpu() for name in layers if rec[name].dim() == 4}
        if not rows:
            return {}
        offset = next(iter(rows.values())).shape[-1] - inputs.shape[-1]  # tokens the model prepended
        evidence = sample["evidence"].cpu() + offset if "evidence" in sample else None
        caption = "Attention of the first query ([CLS]) per layer, head mean; x marks the evidence token"
        return {caption: plot_attention_rows(rows, evidence, out_dir / "attention.png")}
    if inputs.dim() == 5:  # video (B, C, T, H, W): spatial maps per frame, temporal weights
        return _video_figures(rec, layers, inputs[:4], titles[:4], out_dir)
    maps = {name: rec[name].cpu() for name in layers if rec[name].dim() == 4 and rec[name].shape[1] == 1}
    if inputs.dim() != 4 or not maps:
        return {}
    path = plot_attention_maps(inputs.cpu(), maps, out_dir / "attention.png", titles=titles)
    return {
        "Attention maps M on test images: the input, M, and M over the input (true / predicted class)": path
    }


def _video_figures(
    rec: AttentionRecord, layers: list[str], video: torch.Tensor, titles: list[str], out_dir: Path
) -> dict[str, Path]:
    spatial = [rec[n] for n in layers if rec[n].dim() == 5 and rec[n].shape[1] == 1]  # (B, 1, T, h, w)
    temporal = [rec[n] for n in layers if rec[n].dim() == 2 and rec[n].shape[1] == video.shape[2]]  # (B, T)
    if not spatial:
        return {}
    path = plot_video_attention(
        video.cpu(),
        spatial[0][:4].cpu(),
        temporal[0][:4].cpu() if temporal else None,
        out_dir / "attention.png",
        titles=titles,
    )
    return {"Spatial attention M_s per frame (temporal M_t above each frame)": path}


def _evidence_hits(weights: torch.Tensor, batch: Batch) -> torch.Tensor:
    """(B, H, Lq, Lk) weights -> (B,) bool: does query 0's head-mean argmax hit the evidence token?"""
    cls_row = weights[:, :, 0].mean(1)  # (B, Lk)
    offset = cls_row.shape[-1] - batch["input"].shape[-1]  # tokens the model prepended ([CLS])
    return cls_row.argmax(-1) == batch["evidence"] + offset
