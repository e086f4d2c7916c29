"""The MAE pre-training task (He et al. 2022, arXiv:2111.06377), as facebookresearch/mae
``main_pretrain.py`` and ``engine_pretrain.py`` train: a fresh random masking of every image at
every step, the pixel loss on the removed patches, AdamW (betas 0.9, 0.95 in the recipe) with a
linear warm-up and a half-cycle cosine per iteration, weight decay on every tensor of >= 2
dimensions. Testing adds DINO's weighted k-NN evaluation of the encoder's [CLS] feature on whole
(unmasked) images, beside the same evaluation of a randomly initialised encoder (the floor).

Where each piece lives: model :mod:`attnlab.models.vit.mae`; loss :mod:`attnlab.objectives.mae`;
views :mod:`attnlab.data.ssl_images` (``views: mae``: random resized crop of scale (0.2, 1) and a
flip); k-NN :mod:`attnlab.train.knn_eval`; the optimiser and schedule are the engine's
(:mod:`attnlab.train.optim`: ``optim.schedule: cosine``, ``optim.warmup_steps``).

Exact resume: the masking noise is ``torch.rand`` inside the model's forward, drawn from the global
RNG the engine seeds per step, so a resumed run masks the same patches as an uninterrupted one.

Deviations: ``optim.lr`` is the lr itself (the official scales a base lr by ``batch / 256``);
the warm-up reaches ``(k + 1) / W`` of the lr at step k (the engine's warm-up; the official starts
at 0); validation and test losses use fixed masks (seeded), so they compare across steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.models.vit.mae import MAE, MAEOutput, patchify, unpatchify
from attnlab.objectives.mae import mae_terms
from attnlab.runs.config import OptimConfig
from attnlab.train.knn_eval import KNNConfig, KNNEvaluator, knn_metrics, start_knn
from attnlab.train.registry import register_task
from attnlab.train.ssl_figures import plot_reconstructions
from attnlab.train.task import Task
from attnlab.train.vjepa import as_config

EVAL_MASK_SEED = 12345  # validation and test losses use the same masks every time


@register_task("mae")
class MAETask(Task):
    """MAE; test metrics: ``loss``, ``knn_acc`` and ``knn_acc_random_init``."""

    def __init__(
        self,
        *,
        model: nn.Module,
        optim: OptimConfig,
        mask_ratio: float | None = None,
        knn: KNNConfig | None = None,
    ) -> None:
        super().__init__(model=model, optim=optim)
        if not isinstance(model, MAE):
            raise ConfigError(f"task mae trains an MAE model (mae-*), got {type(model).__name__}")
        if mask_ratio is not None and not 0.0 < mask_ratio < 1.0:
            raise ConfigError(f"task.mask_ratio must be in (0, 1) or null (the model's), got {mask_ratio}")
        self.mask_ratio = mask_ratio
        self.knn_config = as_config(KNNConfig, knn or KNNConfig(), "task.knn")
        self.knn_config.check()
        self._knn: KNNEvaluator | None = None

    @property
    def mae(self) -> MAE:
        """``self.model``, typed (checked in ``__init__``)."""
        assert isinstance(self.model, MAE)
        return self.model

    def _forward(self, images: torch.Tensor) -> MAEOutput:
        return self.mae(images, mask_ratio=self.mask_ratio)

    def loss_terms(self, batch: Any) -> dict[str, torch.Tensor]:
        return mae_terms(self._forward(batch.crops[0]))

    def metrics(self, batch: Any) -> dict[str, torch.Tensor]:
        """The loss of fixed masks of the evaluation crops; k-NN accuracies when testing."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(EVAL_MASK_SEED)
            terms = mae_terms(self._forward(batch.crops[0]))
        values = {"loss": torch.stack(list(terms.values())).sum(), **terms}
        if self.trainer.testing:
            values |= knn_metrics(self._knn, batch)
        return values

    def on_test_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        self._knn = start_knn(self.mae, self.knn_config, datamodule, self.device)

    @torch.no_grad()
    def report_figures(self, datamodule: L.LightningDataModule, out_dir: Path) -> dict[str, Path]:
        """Masked input, reconstruction (visible patches pasted back) and original of 6 test images."""
        batch = next(iter(datamodule.test_dataloader()))
        images = batch.images[:6].to(self.device)
        self.mae.eval()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(EVAL_MASK_SEED)
            out = self._forward(images)
        masked, recon = reconstruction_images(self.mae, images, out)
        names = getattr(datamodule, "class_names", None)
        titles = [names[int(y)] for y in batch.label[:6]] if names else None
        path = plot_reconstructions(
            masked.cpu(), recon.cpu(), images.cpu(), out_dir / "reconstructions.png", titles=titles
        )
        return {
            "Test images: masked input (removed patches grey), reconstruction with the visible patches "
            "pasted back, original": path
        }


def reconstruction_images(
    model: MAE, images: torch.Tensor, out: MAEOutput
) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked input, reconstruction) as images like ``images`` (B, C, H, W).

    With ``norm_pix_loss`` the prediction is per-patch normalised pixels; it is mapped back with the
    original patch's mean and std (as MAE's visualisations of such models do), so a removed patch's
    brightness and contrast come from the original, its shape from the model."""
    p, grid = model.config.patch_size, model.encoder.check_images(images)
    patches = patchify(images, p)  # (B, L, p*p*C)
    pred = out.pred
    if model.config.norm_pix_loss:
        mean = patches.mean(dim=-1, keepdim=True)
        std = (patches.var(dim=-1, keepdim=True) + 1.0e-6) ** 0.5
        pred = pred * std + mean
    mask = out.mask[..., None]  # (B, L, 1), 1 = removed
    grey = torch.full_like(patches, float(images.mean()))
    masked = unpatchify(patches * (1 - mask) + grey * mask, p, grid)
    recon = unpatchify(patches * (1 - mask) + pred * mask, p, grid)
    return masked, recon
