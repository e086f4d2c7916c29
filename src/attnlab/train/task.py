"""The base LightningModule every recipe's task derives from.

A task owns the loss (as named terms, so a NaN can be blamed on one of them),
the evaluation metrics, the optimisers, and the figures of the report. The model
it trains is a plain ``nn.Module`` from the registry.

One optimiser (``optim: {name: adamw, ...}``): Lightning's automatic optimisation of
the sum of :meth:`Task.loss_terms`.

Several optimisers (``optim: {NAME: {..., params: SUBMODULE}, ...}``): manual
optimisation, one training step per batch:

- a task that declares ``optimizer_names`` (e.g. a GAN's ``("discriminator",
  "generator")``) steps them in that order, each on its own terms
  ``loss_terms_for(name, batch)``, with the other optimisers' parameters frozen;
  terms are logged as ``train/<name>/<term>`` and ``train/<name>/loss``. A task whose
  update has phases that step several optimisers on one loss, or one optimiser twice
  (StarGAN v2: D on latent-guided then reference-guided fakes, then G, F and E
  together, then G alone), overrides :meth:`Task.optimizer_phases`: ``(phase,
  optimisers)`` pairs, ``loss_terms_for(phase, batch)``, logged under the phase's name;
- any other task computes ``loss_terms(batch)`` once, back-propagates once and steps
  every optimiser (one optimiser per part of the model, e.g. its own lr for a head);
- each optimiser's schedule steps once per batch; a non-finite total stops the run
  naming ``<name>/<term>``;
- ``trainer.global_step`` counts batches, as with one optimiser (Lightning would count
  every ``optimizer.step()``): only the last optimiser of a batch steps through its
  LightningOptimizer, the others through the strategy directly. So ``max_steps``,
  ``checkpoint_every``, the resumable sampler and the per-step seeding keep their meaning.

Batches follow :mod:`attnlab.data.batch`: a dict of tensors or a dataclass of tensors
and lists, whose size is :func:`attnlab.data.batch.batch_size`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import lightning as L
import torch
from torch import nn

from attnlab.data.batch import batch_size
from attnlab.errors import ConfigError, NonFiniteLossError, did_you_mean
from attnlab.objectives.terms import weighted_sum
from attnlab.runs.config import Optim
from attnlab.train.optim import build_optimizer, build_scheduler, partition

Batch = dict[str, torch.Tensor]  # the default batch; any batch of attnlab.data.batch works

# Lightning warns that a manual-optimisation checkpoint holds the weights after the step. So does
# an automatic one, and its global_step counts that step: exactly what resume needs.
warnings.filterwarnings("ignore", message=".*ModelCheckpoint with manual optimization.*")


class Task(L.LightningModule):
    """Subclasses implement :meth:`loss_terms` and :meth:`metrics`; may add :meth:`report_figures`."""

    monitor: ClassVar[str] = "val/loss"  # metric that picks checkpoints/best.ckpt
    monitor_mode: ClassVar[Literal["min", "max"]] = "min"
    # A task whose optimisers take turns on their own losses names them here, in step order.
    optimizer_names: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, *, model: nn.Module, optim: Optim) -> None:
        super().__init__()
        self.model = model
        self.optim = optim
        self._owned: dict[str, list[nn.Parameter]] = {}
        if isinstance(optim, dict):
            self._check_optimizer_names(list(optim))
            self._owned = partition(model, optim)
            self.automatic_optimization = False
        elif self.optimizer_names:
            raise ConfigError(
                f"this task trains several optimisers ({', '.join(self.optimizer_names)}); give optim "
                f"as a mapping of them: optim: {{{self.optimizer_names[0]}: {{name: adam, lr: 2.0e-4}}, ...}}"
            )

    def optimizer_phases(self) -> list[tuple[str, tuple[str, ...]]]:
        """``(phase, optimisers it steps)`` in order, for tasks whose optimisers take turns; by
        default one phase per entry of ``optimizer_names``, named after it."""
        return [(name, (name,)) for name in self.optimizer_names or ()]

    def _check_optimizer_names(self, names: list[str]) -> None:
        if self.optimizer_names is None:
            return
        expected = list(dict.fromkeys(n for _, owners in self.optimizer_phases() for n in owners))
        if sorted(names) == sorted(expected):
            return
        extra = [n for n in names if n not in expected]
        if extra:
            raise ConfigError(
                f"unknown optimiser 'optim.{extra[0]}'{did_you_mean(extra[0], expected)}; "
                f"this task's optimisers: {', '.join(expected)}"
            )
        missing = [n for n in expected if n not in names]
        raise ConfigError(f"optim has no '{missing[0]}' optimiser; this task needs {', '.join(expected)}")

    # -- what a task defines -------------------------------------------------
    def loss_terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Named, already weighted loss terms; the training loss is their sum."""
        raise NotImplementedError

    def loss_terms_for(self, name: str, batch: Any) -> dict[str, torch.Tensor]:
        """Named, weighted terms that phase ``name`` minimises (tasks with ``optimizer_names``; the
        phase of one optimiser is named after it)."""
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
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        if not self.automatic_optimization:
            self._manual_step(batch)
            return None
        terms = self.loss_terms(batch)
        total = self._checked_total(terms)
        self._log_terms("train", terms, total, batch_size(batch), prog_bar=True)
        return total

    def _checked_total(self, terms: dict[str, torch.Tensor], name: str | None = None) -> torch.Tensor:
        """The sum of the terms (of optimiser ``name``); a non-finite sum stops the run."""
        total = weighted_sum(terms)
        if not torch.isfinite(total):
            prefix, lr = (f"{name}/", f"optim.{name}.lr") if name else ("", "optim.lr")
            self._raise_non_finite({f"{prefix}{n}": v for n, v in terms.items()}, lr)
        return total

    def _log_terms(
        self, prefix: str, terms: dict[str, torch.Tensor], total: torch.Tensor, size: int, prog_bar: bool
    ) -> None:
        for name, value in terms.items():
            self.log(f"{prefix}/{name}", value.detach(), batch_size=size)
        self.log(f"{prefix}/loss", total.detach(), prog_bar=prog_bar, batch_size=size)

    def _manual_step(self, batch: Any) -> None:
        optimizers = dict(zip(self.optim, _as_list(self.optimizers()), strict=True))  # type: ignore[arg-type]
        schedulers = dict(zip(self.optim, _as_list(self.lr_schedulers()), strict=True))  # type: ignore[arg-type]
        size = batch_size(batch)
        if self.optimizer_names is None:  # one loss, every optimiser steps on it
            terms = self.loss_terms(batch)
            total = self._checked_total(terms)
            for opt in optimizers.values():
                opt.zero_grad()
            self.manual_backward(total)
            for i, name in enumerate(optimizers):
                self._step(optimizers[name], counts=i == len(optimizers) - 1)
                schedulers[name].step()
            self._log_terms("train", terms, total, size, prog_bar=True)
            return
        phases = self.optimizer_phases()
        for i, (phase, owners) in enumerate(phases):  # optimisers take turns on their own losses
            with self._only_training(owners):
                terms = self.loss_terms_for(phase, batch)
                total = self._checked_total(terms, phase)
                for name in owners:
                    optimizers[name].zero_grad()
                self.manual_backward(total)
            for j, name in enumerate(owners):
                last = i == len(phases) - 1 and j == len(owners) - 1
                self._step(optimizers[name], counts=last)
            self._log_terms(f"train/{phase}", terms, total, size, prog_bar=True)
        for name in dict.fromkeys(n for _, owners in phases for n in owners):
            schedulers[name].step()

    @contextlib.contextmanager
    def _only_training(self, owners: tuple[str, ...]) -> Iterator[None]:
        """The parameters of every optimiser but ``owners`` frozen (no gradient) for one phase, as
        Lightning's ``toggle_optimizer`` does for one optimiser."""
        mine = {id(p) for name in owners for p in self._owned[name]}
        frozen = [p for p in self.model.parameters() if p.requires_grad and id(p) not in mine]
        for p in frozen:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in frozen:
                p.requires_grad_(True)

    def _step(self, opt: Any, *, counts: bool) -> None:
        """Step ``opt``; only a ``counts`` step advances ``trainer.global_step``."""
        if counts:
            opt.step()
        else:  # what LightningOptimizer.step does (precision, strategy), minus the step count
            self.trainer.strategy.optimizer_step(opt.optimizer, closure=lambda: None)

    def _raise_non_finite(self, terms: dict[str, torch.Tensor], lr: str = "optim.lr") -> None:
        bad = {name: float(v.detach()) for name, v in terms.items() if not torch.isfinite(v)}
        detail = ", ".join(f"'{n}' = {v}" for n, v in bad.items())
        raise NonFiniteLossError(
            f"training stopped at step {self.global_step}: non-finite loss term {detail}; "
            f"lower {lr} or check the data"
        )

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._log_metrics("val", batch)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._log_metrics("test", batch)

    def _log_metrics(self, split: str, batch: Any) -> None:
        values = self.metrics(batch)
        if "loss" not in values:
            values |= self._eval_losses(batch)
        for name, value in values.items():
            self.log(f"{split}/{name}", value, batch_size=batch_size(batch), sync_dist=True)

    def _eval_losses(self, batch: Any) -> dict[str, torch.Tensor]:
        """``loss``; with optimisers that take turns, also ``<name>/loss`` each (``loss`` is their sum)."""
        if self.optimizer_names is None or self.automatic_optimization:
            return {"loss": weighted_sum(self.loss_terms(batch))}
        losses = {
            f"{phase}/loss": weighted_sum(self.loss_terms_for(phase, batch))
            for phase, _ in self.optimizer_phases()
        }
        return losses | {"loss": weighted_sum(losses)}

    def configure_optimizers(self) -> Any:
        total_steps = self.trainer.max_steps
        if not isinstance(self.optim, dict):
            optimizer = build_optimizer(self.model, self.optim)
            scheduler = build_scheduler(optimizer, self.optim, total_steps=total_steps)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
        configs = []
        for name, cfg in self.optim.items():
            optimizer = build_optimizer(self._owned[name], cfg, where=f"optim.{name}")
            scheduler = build_scheduler(optimizer, cfg, total_steps=total_steps)
            configs.append(
                {
                    "optimizer": optimizer,
                    "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": f"lr-{name}"},
                }
            )
        return configs


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]
