"""Object-centric video models (MONet, ViMON, AttnViMON, SFA): losses, metrics, pictures.

Batches come from the sprite datamodules (``vmds``, ``spmot``): ``video`` (B, T, 3, H, W)
in [0, 1], ``segmentation`` (B, T, H, W) with 0 = background and k = track k,
``masks`` (B, T, 1 + K_max, H, W) (channel 0 = background) and ``ids`` (B, K_max).

Recurrent/causal models (ViMON, AttnViMON, SFA) are trained on frames 1..T-1 with
frame T as the last prediction target, as the reference does; MONet on every frame.
Evaluation runs each clip once on all T frames: the models are causal, so the
first T-1 frames' outputs are exactly those of the training forward (tested per
model), and the loss is computed from them.

Metrics: reconstruction and next-frame prediction MSE, FG-ARI (foreground pixels)
and, on the test set, MOTA/MOTP as the ViMON benchmark computes them (background
excluded; :mod:`attnlab.metrics.mot`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.metrics.mot import mot_metrics_from_tensors
from attnlab.metrics.segmentation import fg_ari
from attnlab.models.object_centric.attn_vimon import AttnViMON
from attnlab.models.object_centric.monet import MONet
from attnlab.models.object_centric.sfa import SFA
from attnlab.models.object_centric.vimon import ViMON
from attnlab.objectives.object_centric import monet_losses, vimon_losses
from attnlab.objectives.sfa import sfa_losses
from attnlab.runs.config import OptimConfig
from attnlab.train.object_centric_figures import plot_decomposition, write_decomposition_gif
from attnlab.train.registry import register_task
from attnlab.train.task import Batch, Task

Terms = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Family:
    """How one model family is trained: its loss as weighted terms, its default weights."""

    terms: Callable[[Any, torch.Tensor, float, float, tuple[float, float]], Terms]
    drop_last: bool  # frame T is only a prediction target
    beta: float
    gamma: float


def _vimon_terms(
    out: Any, video: torch.Tensor, beta: float, gamma: float, sigmas: tuple[float, float]
) -> Terms:
    loss = vimon_losses(out, video, sigmas=sigmas, beta=beta, gamma=gamma)
    return {
        "recon": loss.recon,
        "pred": loss.pred,
        "kl": beta * loss.kl,
        "mask": gamma * (loss.curr_mask + loss.next_mask),
    }


def _monet_terms(
    out: Any, video: torch.Tensor, beta: float, gamma: float, sigmas: tuple[float, float]
) -> Terms:
    loss = monet_losses(out, video, sigmas=sigmas, beta=beta, gamma=gamma)
    return {"recon": loss.recon, "kl": beta * loss.kl, "mask": gamma * loss.mask}


def _sfa_terms(
    out: Any, video: torch.Tensor, beta: float, gamma: float, sigmas: tuple[float, float]
) -> Terms:
    loss = sfa_losses(out, video, sigmas=sigmas, beta=beta)
    return {"recon": loss.recon, "pred": loss.pred, "kl": beta * loss.kl}


# beta/gamma: ViMON's reference (1, 2); MONet's paper (0.5, 0.5); SFA: ViMON's beta, no mask loss.
FAMILIES: dict[type[nn.Module], Family] = {
    ViMON: Family(_vimon_terms, drop_last=True, beta=1.0, gamma=2.0),
    AttnViMON: Family(_vimon_terms, drop_last=True, beta=1.0, gamma=2.0),
    SFA: Family(_sfa_terms, drop_last=True, beta=1.0, gamma=0.0),
    MONet: Family(_monet_terms, drop_last=False, beta=0.5, gamma=0.5),
}


def _masks(out: Any) -> torch.Tensor:
    """(B, T, K, H, W) the model's decoded masks per frame."""
    masks = out.curr_masks if hasattr(out, "curr_masks") else out.masks
    return masks[:, :, :, 0]


def _recon(out: Any) -> torch.Tensor:
    return out.recon_vae if hasattr(out, "recon_vae") else out.recon


def _prediction(out: Any) -> torch.Tensor | None:
    """(B, T, 3, H, W) predictions of frame t + 1, or None for models that do not predict."""
    for name in ("pred_vae", "pred"):
        if hasattr(out, name):
            return getattr(out, name)
    return None


def _first_frames(out: Any, steps: int) -> Any:
    """The output restricted to its first ``steps`` frames (every field has time at dim 1)."""
    return dataclasses.replace(
        out, **{f.name: getattr(out, f.name)[:, :steps] for f in dataclasses.fields(out)}
    )


@register_task("object-centric")
class ObjectCentricTask(Task):
    """Unsupervised object-centric video learning; beta/gamma default to each family's published values."""

    monitor = "val/recon_mse"
    monitor_mode = "min"

    def __init__(
        self,
        *,
        model: nn.Module,
        optim: OptimConfig,
        beta: float | None = None,
        gamma: float | None = None,
        sigmas: tuple[float, float] = (0.09, 0.11),
    ) -> None:
        super().__init__(model=model, optim=optim)
        family = FAMILIES.get(type(model))
        if family is None:
            names = ", ".join(cls.__name__ for cls in FAMILIES)
            raise ConfigError(f"the object-centric task trains {names}, not {type(model).__name__}")
        self.family = family
        self.beta = family.beta if beta is None else beta
        self.gamma = family.gamma if gamma is None else gamma
        self.sigmas = (float(sigmas[0]), float(sigmas[1]))

    def _terms(self, out: Any, video: torch.Tensor) -> Terms:
        return self.family.terms(out, video, self.beta, self.gamma, self.sigmas)

    def loss_terms(self, batch: Batch) -> Terms:
        video = batch["video"]
        out = self.model(video[:, :-1] if self.family.drop_last else video)
        return self._terms(out, video)

    def metrics(self, batch: Batch) -> dict[str, torch.Tensor]:
        video = batch["video"]
        out = self.model(video)  # all T frames: masks and reconstructions for every frame
        trained = _first_frames(out, video.shape[1] - 1) if self.family.drop_last else out
        values = {"loss": torch.stack(list(self._terms(trained, video).values())).sum()}
        values["recon_mse"] = (_recon(out) - video).square().mean()
        prediction = _prediction(out)
        if prediction is not None:
            values["pred_mse"] = (prediction[:, :-1] - video[:, 1:]).square().mean()
        masks = _masks(out)
        values["fg_ari"] = torch.nanmean(fg_ari(masks, batch["segmentation"])).to(video.dtype)
        if self.trainer.testing:
            self._tracking.append(
                (masks.argmax(2).to(torch.uint8).cpu(), batch["masks"].cpu(), batch["ids"].cpu())
            )
        return values

    def on_test_epoch_start(self) -> None:
        self._tracking: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def on_test_epoch_end(self) -> None:
        mot = _tracking_metrics(self._tracking, num_slots=self._num_slots())
        for name, value in mot.items():
            self.log(f"test/{name}", value)

    def _num_slots(self) -> int:
        return int(self.model.config.num_slots)

    @torch.no_grad()
    def report_figures(self, datamodule: L.LightningDataModule, out_dir: Path) -> dict[str, Path]:
        self.model.eval()
        batch = next(iter(datamodule.test_dataloader()))
        video = batch["video"][:4].to(self.device)
        out = self.model(video)
        masks, recon, prediction = _masks(out).cpu(), _recon(out).cpu(), _prediction(out)
        pred = None if prediction is None else prediction.cpu()
        png = plot_decomposition(
            video.cpu()[0],
            recon[0],
            None if pred is None else pred[0],
            masks[0],
            out_dir / "decomposition.png",
        )
        gif = write_decomposition_gif(video.cpu(), recon, masks, out_dir / "decomposition.gif")
        return {
            "Frames, reconstruction, next-frame prediction and slot masks (test clip 1)": png,
            "Video | reconstruction | slots (argmax colours), 4 test clips": gif,
        }


def _tracking_metrics(
    parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], *, num_slots: int
) -> dict[str, float]:
    """MOTA/MOTP etc. over the whole test set, background excluded, as the ViMON benchmark."""
    if not parts:
        return {}
    slot_ids = torch.cat([p[0] for p in parts])  # (N, T, H, W) argmax slot per pixel
    gt = torch.cat([p[1] for p in parts])  # (N, T, 1 + K, H, W), channel 0 = background
    ids = torch.cat([p[2] for p in parts])  # (N, K), 0 = no object
    pred = (
        torch.nn.functional.one_hot(slot_ids.long(), num_slots).permute(0, 1, 4, 2, 3).bool()
    )  # (N, T, S, H, W)
    objects_then_bg = torch.cat([gt[:, :, 1:], gt[:, :, :1]], dim=2)  # background last, as num_bg expects
    track = torch.where(ids > 0, ids, torch.full_like(ids, -1))  # (N, K); -1 = padding
    gt_ids = torch.cat([track, torch.full_like(track[:, :1], 0)], dim=1)  # background id 0
    gt_ids = gt_ids[:, None].expand(-1, gt.shape[1], -1)  # (N, T, 1 + K)
    result = mot_metrics_from_tensors(pred, objects_then_bg, gt_ids, num_bg=1, exclude_bg=True)
    return {
        "mota": result.mota,
        "motp": result.motp,
        "mostly_tracked": result.mostly_tracked,
        "num_switches": result.num_switches,
    }
