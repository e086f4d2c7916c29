"""The base LightningModule every recipe's task derives from.

A task owns the loss (as named terms, so a NaN can be blamed on one of them),
the evaluation metrics, the optimiser, and the figures of the report. The model
it trains is a plain ``nn.Module`` from the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import lightning as L
import torch
from torch import nn

from attnlab.errors import NonFiniteLossError
from attnlab.runs.config import OptimConfig
from attnlab.train.optim import build_optimizer, build_scheduler

Batch = dict[str, torch.Tensor]


class Task(L.LightningModule):
    """Subclasses implement :meth:`loss_terms` and :meth:`metrics`; may add :meth:`report_figures`."""

    monitor: ClassVar[str] = "val/loss"  # metric that picks checkpoints/best.ckpt
    monitor_mode: ClassVar[Literal["min", "max"]] = "min"

    def __init__(self, *, model: nn.Module, optim: OptimConfig) -> None:
        super().__init__()
        self.model = model
        self.optim = optim

    # -- what a task defines -------------------------------------------------
    def loss_terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Named, already weighted loss terms; the training loss is their sum."""
        raise NotImplementedError

    def metrics(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Per-batch evaluation metrics (averaged over the split, weighted by batch size).

        Include "loss" when it falls out of the same forward; otherwise the base
        class computes it from :meth:`loss_terms` with a second forward.
        """
        raise NotImplementedError

    def report_figures(self, datamodule: L.LightningDataModule, out_dir: Path) -> dict[str, Path]:
        """Figures for report.md by caption; none by default."""
        return {}

    # -- Lightning hooks -----------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        terms = self.loss_terms(batch)
        total = torch.stack(list(terms.values())).sum()
        if not torch.isfinite(total):
            self._raise_non_finite(terms)
        size = _batch_size(batch)
        for name, value in terms.items():
            self.log(f"train/{name}", value.detach(), batch_size=size)
        self.log("train/loss", total.detach(), prog_bar=True, batch_size=size)
        return total

    def _raise_non_finite(self, terms: dict[str, torch.Tensor]) -> None:
        bad = {name: float(v.detach()) for name, v in terms.items() if not torch.isfinite(v)}
        detail = ", ".join(f"'{n}' = {v}" for n, v in bad.items())
        raise NonFiniteLossError(
            f"training stopped at step {self.global_step}: non-finite loss term {detail}; "
            "lower optim.lr or check the data"
        )

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._log_metrics("val", batch)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._log_metrics("test", batch)

    def _log_metrics(self, split: str, batch: Batch) -> None:
        values = self.metrics(batch)
        if "loss" not in values:
            values["loss"] = torch.stack(list(self.loss_terms(batch).values())).sum()
        for name, value in values.items():
            self.log(f"{split}/{name}", value, batch_size=_batch_size(batch), sync_dist=True)

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.model, self.optim)
        scheduler = build_scheduler(optimizer, self.optim, total_steps=self.trainer.max_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def _batch_size(batch: Batch) -> int:
    return int(next(iter(batch.values())).shape[0])
