"""StarGAN v2 training (clovaai/stargan-v2 ``Solver.train``), with the thesis's class-aware terms.

Every batch runs the reference's four updates in its order (:meth:`StarGAN2Task.optimizer_phases`):
the discriminator on latent-guided fakes, again on reference-guided fakes, then G, F and E together
on the latent-guided generator loss (with C's ``task`` and ``sem`` terms when class-aware, C
stepping with them), then G alone on the reference-guided one; then the EMA of G, F, E moves
(beta 0.999). Batches are ``digit-domains``'s (:mod:`attnlab.data.digit_domains`): images and
their domains, reference pairs and their domain (the target domain y_trg of both translations),
labels with a ``labelled`` mask (only those reach the loss). The latents z, z2 ~ N(0, I) are drawn
once per batch from the engine's per-step seed, so a resumed run draws the same ones.

Evaluation: the generator's latent-guided terms (``loss`` is their sum, ``ds`` at the current
weight), the discriminator's adversarial terms (no R1: evaluation has no gradients), and, when
class-aware, C's accuracy on each domain (``class_acc_source``; ``class_acc_target`` uses the
target's labels, which training never sees) and ``class_kept``: the fraction of latent-guided
translations C gives the class it gave the untranslated image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.models.gan.stargan2 import StarGAN2
from attnlab.objectives.gan import discriminator_terms
from attnlab.objectives.stargan2 import (
    StarGAN2LossConfig,
    Translation,
    class_aware_terms,
    discriminator_loss_terms,
    generator_loss_terms,
)
from attnlab.objectives.terms import weighted_sum
from attnlab.runs.config import Optim
from attnlab.train.gan_figures import GRID_IMAGES, GRID_STYLES, translation_grid
from attnlab.train.registry import register_task
from attnlab.train.task import Task
from attnlab.train.vjepa import as_config

DOMAIN_NAMES = ("source", "target")


@register_task("stargan2")
class StarGAN2Task(Task):
    """G, F, E, D (and C) as the reference trains them; see the module docstring."""

    optimizer_names = ("discriminator", "generator", "mapping_network", "style_encoder")

    def __init__(
        self,
        *,
        model: nn.Module,
        optim: Optim,
        loss: StarGAN2LossConfig | None = None,
        ema_beta: float = 0.999,
    ) -> None:
        if not isinstance(model, StarGAN2):
            raise ConfigError(f"task stargan2 trains a StarGAN v2 (stargan2-*), got {type(model).__name__}")
        super().__init__(model=model, optim=optim)
        self.loss = as_config(StarGAN2LossConfig, loss or StarGAN2LossConfig(), "task.loss")
        self.loss.check()
        if not 0 <= ema_beta < 1:
            raise ConfigError(f"task.ema_beta must be in [0, 1), got {ema_beta}")
        self.ema_beta = ema_beta
        self._z: tuple[torch.Tensor, torch.Tensor] | None = None
        self._tally: dict[str, torch.Tensor] = {}

    @property
    def stargan(self) -> StarGAN2:
        assert isinstance(self.model, StarGAN2)
        return self.model

    def optimizer_phases(self) -> list[tuple[str, tuple[str, ...]]]:
        g_latent: tuple[str, ...] = ("generator", "mapping_network", "style_encoder")
        if self.stargan.classifier is not None:
            g_latent += ("classifier",)
        return [
            ("d_latent", ("discriminator",)),
            ("d_reference", ("discriminator",)),
            ("g_latent", g_latent),
            ("g_reference", ("generator",)),
        ]

    # -- training ---------------------------------------------------------------------------------
    def _latents(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if self._z is None or len(self._z[0]) != len(batch["images"]):
            shape = (len(batch["images"]), self.stargan.config.latent_dim)
            self._z = (torch.randn(shape, device=self.device), torch.randn(shape, device=self.device))
        return self._z

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._z = None  # new latents for every batch, shared by its phases (the reference's fetch)

    def _translation(self, batch: dict[str, torch.Tensor], by_reference: bool) -> Translation:
        sources = (batch["refs"], batch["refs2"]) if by_reference else self._latents(batch)
        return Translation(batch["images"], batch["domains"], batch["ref_domains"], *sources, by_reference)

    def loss_terms_for(self, name: str, batch: Any) -> dict[str, torch.Tensor]:
        t = self._translation(batch, by_reference=name.endswith("reference"))
        if name.startswith("d_"):
            return discriminator_loss_terms(self.stargan, t, self.loss)
        terms, fake = generator_loss_terms(self.stargan, t, self.loss, self.global_step)
        if name == "g_latent" and self.stargan.classifier is not None:
            terms |= class_aware_terms(self.stargan, t.x, fake, batch["labels"], batch["labelled"], self.loss)
        return terms

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        self.log("train/lambda_ds", self.loss.ds_weight(self.global_step), batch_size=1)
        out = super().training_step(batch, batch_idx)
        # within the step, not in on_train_batch_end: the checkpoint callback saves before that hook
        # runs, and a resumed run would miss this step's average
        self.stargan.update_ema(self.ema_beta)
        return out

    # -- evaluation -------------------------------------------------------------------------------
    def metrics(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        self.stargan.check_inputs(batch["images"], batch["domains"])
        self._z = None
        t = self._translation(batch, by_reference=False)
        terms, fake = generator_loss_terms(self.stargan, t, self.loss, self.global_step)
        d = self.stargan.discriminator
        d_terms = discriminator_terms(d(t.x, t.y_org), d(fake, t.y_trg))
        values = {"loss": weighted_sum(terms)} | terms
        values |= {f"d_{name}": value for name, value in d_terms.items()}
        if self.stargan.classifier is not None:
            self._count_classes(batch, fake)
        return values

    def _count_classes(self, batch: dict[str, torch.Tensor], fake: torch.Tensor) -> None:
        """Adds this batch's correct and total counts per domain, and translations whose class C keeps."""
        predicted = self.stargan.classify(batch["images"]).argmax(-1)
        kept = self.stargan.classify(fake).argmax(-1) == predicted
        correct = predicted == batch["labels"]
        for d, name in enumerate(DOMAIN_NAMES):
            mine = batch["domains"] == d
            self._add(f"class_acc_{name}", correct[mine])
        self._add("class_kept", kept)

    def _add(self, name: str, hits: torch.Tensor) -> None:
        counts = torch.stack([hits.sum(), torch.tensor(hits.numel(), device=hits.device)]).double()
        self._tally[name] = self._tally.get(name, torch.zeros_like(counts)) + counts

    def on_validation_epoch_start(self) -> None:
        self._tally = {}

    def on_test_epoch_start(self) -> None:
        self._tally = {}

    def on_validation_epoch_end(self) -> None:
        self._log_tally("val")

    def on_test_epoch_end(self) -> None:
        self._log_tally("test")

    def _log_tally(self, split: str) -> None:
        for name, (hits, total) in self._tally.items():
            if total > 0:
                self.log(f"{split}/{name}", hits / total, sync_dist=True)

    # -- report -----------------------------------------------------------------------------------
    @torch.no_grad()
    def report_figures(self, datamodule: L.LightningDataModule, out_dir: Path) -> dict[str, Path]:
        """Test images of each domain translated into the other by the EMA networks, with the same
        ``GRID_STYLES`` latents (seed 0) for every image."""
        test = datamodule.build("test")  # type: ignore[attr-defined]
        by_domain: dict[int, list[torch.Tensor]] = {0: [], 1: []}
        for i in range(len(test)):
            example = test[i]
            pool = by_domain[int(example["domains"])]
            if len(pool) < GRID_IMAGES:
                pool.append(example["images"])
            if min(len(p) for p in by_domain.values()) == GRID_IMAGES:
                break
        z = torch.randn(
            GRID_STYLES, self.stargan.config.latent_dim, generator=torch.Generator().manual_seed(0)
        )
        figures = {}
        for d, name in enumerate(DOMAIN_NAMES):
            images = torch.stack(by_domain[d]).to(self.device)
            path = translation_grid(
                self.stargan, images, DOMAIN_NAMES, 1 - d, z, out_dir / f"translations_{name}.png"
            )
            figures[
                f"{name.capitalize()} test images translated into the {DOMAIN_NAMES[1 - d]} domain "
                f"(EMA networks, the same {GRID_STYLES} latents per row)"
            ] = path
        return figures
