"""Training ABN and ST-ABN: ``L_att + L_per`` (Fukui et al. 2019, eq. 1; seed 001, eq. 1).

Both branches are trained with cross-entropy; the prediction is the perception
branch's. For models with ``invert_spatial`` / ``invert_temporal`` switches (ST-ABN)
the test set is also scored with each attention inverted (``M -> 1 - M``) and with
both: the seed's attention-inversion table (test/acc_inv_spatial, ...).

Batches with an ``attention`` map M' (1, H, W) at the input's size (the
``edited-maps`` dataset) add Mitsuhara et al.'s ``map_weight * ||M - M'||_2``, with
M' area-averaged down to M's resolution.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import ConfigError
from attnlab.objectives.abn import abn_loss
from attnlab.runs.config import OptimConfig
from attnlab.train.classification import ClassificationTask
from attnlab.train.registry import register_task
from attnlab.train.task import Batch

INVERSIONS = {
    "inv_spatial": {"invert_spatial": True},
    "inv_temporal": {"invert_temporal": True},
    "inv_both": {"invert_spatial": True, "invert_temporal": True},
}


@register_task("attention-branch")
class AttentionBranchTask(ClassificationTask):
    """ABN-style models whose output has ``att_logits`` and ``logits`` (perception)."""

    def __init__(
        self, *, model: nn.Module, optim: OptimConfig, label_smoothing: float = 0.0, map_weight: float = 1.0
    ) -> None:
        super().__init__(model=model, optim=optim, label_smoothing=label_smoothing)
        if map_weight < 0:
            raise ConfigError(f"task.map_weight must be >= 0, got {map_weight}")
        self.map_weight = map_weight

    def loss_terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        out = self.model(batch["input"])
        if "attention" not in batch:
            return abn_loss(out.att_logits, out.logits, batch["label"]).terms()
        edited = F.adaptive_avg_pool2d(batch["attention"], out.attention.shape[-2:])  # (B, 1, h, w)
        loss = abn_loss(
            out.att_logits,
            out.logits,
            batch["label"],
            attention=out.attention,
            target_attention=edited,
            map_weight=self.map_weight,
        )
        return loss.terms()

    def metrics(self, batch: Batch) -> dict[str, torch.Tensor]:
        x, y = batch["input"], batch["label"]
        out = self.model(x)
        self._remember(batch, out.logits)
        values = {
            "acc": (out.logits.argmax(-1) == y).float().mean(),
            "att_acc": (out.att_logits.argmax(-1) == y).float().mean(),
            "loss": F.cross_entropy(out.att_logits, y) + F.cross_entropy(out.logits, y),
        }
        if self.trainer.testing and self._can_invert():
            for name, switches in INVERSIONS.items():
                logits = self.model(x, **switches).logits
                values[f"acc_{name}"] = (logits.argmax(-1) == y).float().mean()
        return values

    def _can_invert(self) -> bool:
        return "invert_spatial" in inspect.signature(self.model.forward).parameters
