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
excluded; :mod:`attnlab.metrics.mot`) over frames 3..T, T the clip length (the authors'
script stops at frame 10; the same on 10-frame clips). ``test/mot_first_frame`` and
``test/mot_last_frame`` (1-based) record the frames scored.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.metrics.mot import slot_mot_metrics
from attnlab.metrics.segmentation import fg_ari, hungarian_miou
from attnlab.models.object_centric.colour import chromaticity
from attnlab.models.object_centric.motion import object_motion, slot_motion_spread
from attnlab.models.object_centric.spread import slot_compactness, slot_spread
from attnlab.models.outputs import ObjectCentricModel, ObjectCentricOutput
from attnlab.objectives.families import objective
from attnlab.objectives.object_centric import Likelihood
from attnlab.objectives.terms import weighted_sum
from attnlab.runs.config import OptimConfig
from attnlab.train.object_centric_figures import plot_decomposition, write_decomposition_gif
from attnlab.train.registry import register_task
from attnlab.train.task import Batch, Task


@register_task("object-centric")
class ObjectCentricTask(Task):
    """Unsupervised object-centric video learning; the loss, its default beta/gamma and whether
    frame T is only a target come from the model's ``objective`` (:mod:`attnlab.objectives.families`)."""

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
        # The floor of each pixel channel's likelihood in the mixture loss: the reference's
        # 1e-5 stops the gradient of every pixel more than ~0.56 from all slots' colours, which
        # at the start of training is every bright sprite pixel (docs/object_centric.md);
        # 0 keeps it (no floor).
        min_likelihood: float = 1e-5,
        # "mixture": the reference's, one mixture over slots per pixel channel; "pixel_mixture":
        # one per pixel over its whole colour (MONet's paper), which with SFA's attention masks
        # separated the sprites (docs/object_centric.md, a4); "image": a Gaussian of the mixed
        # image (Slot Attention's MSE), in which no slot can win a pixel by hedging
        likelihood: Likelihood = "mixture",
        # The weight of the next-frame prediction term (1: ViMON's and the seed's). 0 leaves the
        # prediction untrained: with SFA's attention masks and the per-pixel mixture, the
        # prediction's own mixture held every slot at the one-slot level (docs/object_centric.md, a4)
        pred_weight: float = 1.0,
        # Train with the image likelihood for this many steps, then with ``likelihood``
        # (evaluation always uses ``likelihood``): the image likelihood splits the slots on
        # every seed but leaves the masks soft, the per-pixel mixture sharpens them but from
        # the start can leave one slot winning every pixel (docs/object_centric.md, a9)
        image_warmup_steps: int = 0,
        # What the likelihood scores: "rgb" the frames (every paper's); "chromaticity" their
        # rgb / (r + g + b), the same on an object's lit and shaded sides, so a slot that takes a
        # whole shaded object need not paint its shading (docs/video_reasoning.md, issue 16 part 3).
        # The reconstruction, its MSE and the pictures are then of the chromaticity.
        target: Literal["rgb", "chromaticity"] = "rgb",
        # > 0 with the chromaticity target: the likelihood also scores the frame's RGB times this
        # weight (an RGB sigma of sigma / weight), which the model paints beside the chromaticity
        # (SFA with ``appearance_channels`` 3): the chromaticity alone leaves the slot latents
        # the object's colour but not the shading and highlights that tell its shape and material,
        # which the questions name it by. 0 = off (docs/video_reasoning.md, issue 16 part 3, has
        # what each weight did)
        appearance_weight: float = 0.0,
        # > 0: the likelihood also scores each pixel's motion (its object's, from the clip's
        # masks; :mod:`attnlab.models.object_centric.motion`) times this weight, which the model
        # paints beside the colour (SFA with ``motion_channels`` 2): SAVi's flow target, so that two
        # objects of one colour that move apart cost more in one slot. 0 = off (every paper's but
        # SAVi's; docs/video_reasoning.md, issue 16 part 3)
        motion_weight: float = 0.0,
        # Who fits the motion: "decoder" paints it per pixel beside the colour (SAVi's); "slots" gives
        # each slot one motion, the least-squares fit of the pixels its mask holds, and scores their
        # spread around it as a term of its own (Guess What Moves' closed-form fit, a translation per
        # slot): a slot then cannot hold two objects that move apart at no cost, as a per-pixel
        # decoder lets it (docs/video_reasoning.md, issue 16 part 3)
        motion_fit: Literal["decoder", "slots"] = "decoder",
        # > 0: every slot but the frame's largest (the background) pays, times this weight, the
        # spread of its pixels' (y, x) in [0, 1] around their centre, / (2 sigma^2): k-means' position
        # term (the position weighted by the square root of this), with SPACE's local foreground
        # objects and free background (:func:`attnlab.models.object_centric.spread.slot_compactness`),
        # so a slot that holds two objects of one colour apart pays for their distance even where they
        # stand still. 0 = off (every paper's; docs/video_reasoning.md, issue 16 part 3)
        compact_weight: float = 0.0,
        # with ``compact_weight``: the background's slot pays too, as every cluster of the k-means
        # floor does, so no free slot is left to take the objects the compact slots give up.
        # Measured on CLEVRER-lite: the slots settle on a fixed partition by place, the grid floor
        # (docs/video_reasoning.md)
        compact_background: bool = False,
        # > 0: every slot also pays, times this weight, the spread of its pixels' colour (what the
        # likelihood scores: rgb or chromaticity) around its mean colour, / (2 sigma^2): one colour
        # per slot, k-means' colour term, which the per-pixel mixture lets another slot's paint
        # hedge (:func:`attnlab.models.object_centric.spread.slot_spread`). 0 = off (every paper's;
        # docs/video_reasoning.md, issue 16 part 3)
        colour_fit_weight: float = 0.0,
    ) -> None:
        super().__init__(model=model, optim=optim)
        if not isinstance(model, ObjectCentricModel):
            raise ConfigError(
                f"the object-centric task trains object-centric models (MONet, ViMON, AttnViMON, SFA), "
                f"not {type(model).__name__}"
            )
        self.objective = objective(model.objective)
        if gamma is not None and self.objective.gamma is None:
            raise ConfigError(f"task.gamma: the {self.objective.name} loss has no mask term to weight")
        self.beta = self.objective.beta if beta is None else beta
        self.gamma = self.objective.gamma if gamma is None else gamma
        self.sigmas = (float(sigmas[0]), float(sigmas[1]))
        if min_likelihood < 0:
            raise ConfigError(f"task.min_likelihood must be >= 0, got {min_likelihood}")
        self.min_likelihood = float(min_likelihood)
        self.likelihood = likelihood
        if pred_weight < 0:
            raise ConfigError(f"task.pred_weight must be >= 0, got {pred_weight}")
        if pred_weight != 1 and not self.objective.drop_last:
            raise ConfigError(f"task.pred_weight: the {self.objective.name} loss has no prediction term")
        self.pred_weight = float(pred_weight)
        if image_warmup_steps < 0:
            raise ConfigError(f"task.image_warmup_steps must be >= 0, got {image_warmup_steps}")
        self.image_warmup_steps = image_warmup_steps
        if target not in ("rgb", "chromaticity"):
            raise ConfigError(f"task.target must be 'rgb' or 'chromaticity', got {target!r}")
        self.target = target
        self.appearance_weight = _check_weight("appearance_weight", appearance_weight)
        paints_appearance = getattr(model.config, "appearance_channels", 0) > 0  # only SFA's config has it
        wants_appearance = appearance_weight > 0
        if wants_appearance != paints_appearance or (wants_appearance and target != "chromaticity"):
            raise ConfigError(
                "task.appearance_weight > 0, task.target 'chromaticity' and a model that paints the RGB "
                "(sfa with model.appearance_channels 3) go together; got task.appearance_weight "
                f"{appearance_weight}, task.target {target!r} with {type(model).__name__}"
                f"{' painting the RGB' if paints_appearance else ''}"
            )
        self.motion_weight = _check_weight("motion_weight", motion_weight)
        if motion_fit not in ("decoder", "slots"):
            raise ConfigError(f"task.motion_fit must be 'decoder' or 'slots', got {motion_fit!r}")
        paints_motion = getattr(model.config, "motion_channels", 0) > 0  # only SFA's config has it
        if (motion_weight > 0 and motion_fit == "decoder") != paints_motion:
            raise ConfigError(
                "task.motion_weight > 0 with task.motion_fit 'decoder' and a model that paints motion "
                "(sfa with model.motion_channels 2) go together; got task.motion_weight "
                f"{motion_weight}, task.motion_fit {motion_fit!r} with {type(model).__name__}"
                f"{' painting motion' if paints_motion else ''}"
            )
        self.motion_fit = motion_fit
        self.compact_weight = _check_weight("compact_weight", compact_weight)
        if compact_background and not self.compact_weight:
            raise ConfigError("task.compact_background true needs task.compact_weight > 0")
        self.compact_background = compact_background
        self.colour_fit_weight = _check_weight("colour_fit_weight", colour_fit_weight)

    def reconstruction_target(self, batch: Batch) -> torch.Tensor:
        """What the model reconstructs (B, T, C, H, W): the frames or their chromaticity, then with
        ``appearance_weight`` the weighted frames, then with ``motion_weight`` and the decoder's fit
        the weighted motion of each pixel's object (C = 3, 5, 6 or 8)."""
        video = batch["video"]
        colour = chromaticity(video) if self.target == "chromaticity" else video
        if self.appearance_weight:
            colour = torch.cat([colour, self.appearance_weight * video], dim=2)
        if not self.motion_weight or self.motion_fit == "slots":
            return colour
        motion = object_motion(batch["masks"]).to(video.dtype)  # (B, T, 2, H, W)
        return torch.cat([colour, self.motion_weight * motion], dim=2)

    def _terms(
        self,
        out: ObjectCentricOutput,
        batch: Batch,
        video: torch.Tensor,
        likelihood: Likelihood | None = None,
    ) -> dict[str, torch.Tensor]:
        """The objective's terms on ``video``, the target of ``batch``; ``out`` covers its first frames."""
        terms = self.objective.terms(
            out,
            video,
            beta=self.beta,
            gamma=self.gamma,
            sigmas=self.sigmas,
            min_likelihood=self.min_likelihood,
            likelihood=likelihood or self.likelihood,
        )
        if self.pred_weight != 1:
            terms["pred"] = self.pred_weight * terms["pred"]
        scale = 2 * self.sigmas[1] ** 2  # the slots' fits are Gaussians with the objects' sigma
        steps = out.masks.shape[1]  # the frames the model saw
        if self.motion_weight and self.motion_fit == "slots":
            motion = object_motion(batch["masks"])[:, :steps].to(video.dtype)  # (B, steps, 2, H, W)
            spread = slot_motion_spread(out.masks, self.motion_weight * motion)  # (B, steps)
            terms["motion"] = spread.mean() / scale  # as the decoder's fit scores it
        if self.compact_weight:
            spread = slot_compactness(out.masks, free_background=not self.compact_background)  # (B, steps)
            terms["compact"] = self.compact_weight * spread.mean() / scale
        if self.colour_fit_weight:
            # (B, steps, 3, H, W): the colour alone, not the RGB or motion painted beside it
            colour = video[:, :steps, :3]
            terms["colour_fit"] = (
                self.colour_fit_weight * slot_spread(out.masks, colour).sum(dim=2).mean() / scale
            )
        return terms

    def loss_terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        video = batch["video"]
        out = self.model(video[:, :-1] if self.objective.drop_last else video)
        warming_up = self.training and self.global_step < self.image_warmup_steps
        return self._terms(out, batch, self.reconstruction_target(batch), "image" if warming_up else None)

    def metrics(self, batch: Batch) -> dict[str, torch.Tensor]:
        video = batch["video"]
        target = self.reconstruction_target(batch)
        out = self.model(video)  # all T frames: masks and reconstructions for every frame
        trained = out.first_frames(video.shape[1] - 1) if self.objective.drop_last else out
        values = {"loss": weighted_sum(self._terms(trained, batch, target))}
        # the colour's errors, comparable with and without the motion target
        values["recon_mse"] = (out.recon[:, :, :3] - target[:, :, :3]).square().mean()
        if out.pred is not None:
            values["pred_mse"] = (out.pred[:, :-1, :3] - target[:, 1:, :3]).square().mean()
        masks = out.masks[:, :, :, 0]  # (B, T, K, H, W)
        values["fg_ari"] = torch.nanmean(fg_ari(masks, batch["segmentation"])).to(video.dtype)
        # FG-ARI ignores the background's pixels, so a slot that holds an object with the floor around
        # it scores as if it held the object alone; the matched IoU counts them (docs/video_reasoning.md)
        values["miou"] = torch.nanmean(hungarian_miou(masks, batch["segmentation"])).to(video.dtype)
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
        batch = {key: batch[key][:4].to(self.device) for key in ("video", "masks")}
        out = self.model(batch["video"])
        masks = out.masks[:, :, :, 0].cpu()  # (B, T, K, H, W)
        recon = out.recon[:, :, :3].cpu()  # (B, T, 3, H, W): the colour, without any motion
        pred = None if out.pred is None else out.pred[:, :, :3].cpu()
        shown = self.reconstruction_target(batch)[:, :, :3].cpu()  # the colour the reconstruction rebuilds
        png = plot_decomposition(
            shown[0],
            recon[0],
            None if pred is None else pred[0],
            masks[0],
            out_dir / "decomposition.png",
        )
        gif = write_decomposition_gif(shown, recon, masks, out_dir / "decomposition.gif")
        return {
            "Frames, reconstruction, next-frame prediction and slot masks (test clip 1)": png,
            "Video | reconstruction | slots (argmax colours), 4 test clips": gif,
        }


def _check_weight(name: str, weight: float) -> float:
    if not math.isfinite(weight) or weight < 0:
        raise ConfigError(f"task.{name} must be finite and >= 0, got {weight}")
    return float(weight)


def _tracking_metrics(
    parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], *, num_slots: int
) -> dict[str, float]:
    """MOTA/MOTP etc. over the whole test set (:func:`slot_mot_metrics`)."""
    if not parts:
        return {}
    slot_ids, gt_masks, ids = (torch.cat(p) for p in zip(*parts, strict=True))
    result = slot_mot_metrics(slot_ids, gt_masks, ids, num_slots=num_slots)
    metrics = {
        "mota": result.mota,
        "motp": result.motp,
        "mostly_tracked": result.mostly_tracked,
        "num_switches": result.num_switches,
    }
    if result.first_frame is not None and result.last_frame is not None:  # None only for no clips
        metrics |= {"mot_first_frame": float(result.first_frame), "mot_last_frame": float(result.last_frame)}
    return metrics
