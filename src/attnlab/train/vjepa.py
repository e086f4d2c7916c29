"""The V-JEPA pre-training task (Bardes et al. 2024, arXiv:2404.08471), as facebookresearch/jepa
``app/vjepa/train.py`` trains: masks per batch, the L1 feature-prediction loss, AdamW with the
official schedules, gradient clipping per part after warm-up, and the EMA update of the target
encoder after every optimiser step. Testing adds the frozen evaluation: attentive and
average-pooling probes on the target encoder's features, for every label the datamodule names,
beside the same probes on a randomly initialised encoder (the floor).

Where each piece lives: model :mod:`attnlab.models.vjepa.vjepa`; loss :mod:`attnlab.objectives.vjepa`;
masks :mod:`attnlab.objectives.vjepa_masks`; schedules and EMA
:mod:`attnlab.objectives.vjepa_schedules`; probes :mod:`attnlab.train.vjepa_probe`.

Recipe mapping: ``optim.lr`` is the reference (peak) lr, ``optim.warmup_steps`` the warm-up,
``optim.weight_decay`` the starting weight decay and ``optim.betas`` AdamW's betas; the rest of
the schedule is this task's (``start_lr``, ``final_lr``, ``final_weight_decay``, ``ema``,
``ipe_scale``), laid out over ``trainer.max_steps`` (the official ``ipe * num_epochs``).
``optim.schedule`` and ``optim.min_lr_ratio`` do not apply.

Deviations: masks and the augmentation (``task.augment``) are drawn in the training step (from the
per-step seeded RNG, so a resumed run draws the same ones) rather than in the data loader; the
augmentation is off unless ``task.augment`` is given (the official pre-training always crops and
flips; the rows measured before it existed did not); gradients are clipped from the first step
after warm-up (the official from the epoch after it).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
import torch
from torch import nn

from attnlab.data.clip_augment import ClipAugment, augment_clips
from attnlab.errors import ConfigError, unknown
from attnlab.explain.capture import capture
from attnlab.metrics.rank import effective_rank
from attnlab.models.outputs import JEPAOutput
from attnlab.models.vjepa.encoder import VideoViT, check_clips
from attnlab.models.vjepa.vjepa import VJEPA
from attnlab.objectives.vjepa import jepa_terms
from attnlab.objectives.vjepa_masks import MULTIBLOCK, MaskConfig, sample_masks
from attnlab.objectives.vjepa_schedules import VJEPASchedules, decay_groups, ema_update
from attnlab.runs.config import OptimConfig
from attnlab.train.figures import plot_video_attention
from attnlab.train.optim import StepScheduler
from attnlab.train.registry import register_task
from attnlab.train.task import Batch, Task
from attnlab.train.vjepa_figures import plot_feature_pca
from attnlab.train.vjepa_probe import KINDS, ProbeConfig, across_segments, average_views, extract, fit_probe
from attnlab.train.vjepa_views import evaluation_views, still_clips

EVAL_MASK_SEED = 12345  # validation and test losses use the same masks every time
C = TypeVar("C")


def as_config(cls: type[C], value: object, where: str) -> C:
    """``value`` as the dataclass ``cls``: the config parser hands nested dataclasses over as mappings
    (lists for tuples); unknown keys are one-line errors."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping of {cls.__name__} fields, got {value!r}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in value:
        if key not in names:
            raise unknown(f"{where} key", str(key), names)
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})


@register_task("vjepa")
class VJEPATask(Task):
    """V-JEPA feature prediction; test metrics include frozen probes (``probe/...``, ``floor/...``)."""

    def __init__(
        self,
        *,
        model: nn.Module,
        optim: OptimConfig,
        masks: list[MaskConfig] | None = None,
        start_lr: float = 2e-4,
        final_lr: float = 1e-6,
        final_weight_decay: float = 0.4,
        ema: tuple[float, float] = (0.998, 1.0),
        ipe_scale: float = 1.25,
        clip_grad: float | None = 10.0,
        loss_exp: float = 1.0,
        reg_coeff: float = 0.0,
        ctx_std_coeff: float = 0.0,
        ctx_cov_coeff: float = 0.0,
        ctx_content_std_coeff: float = 0.0,
        ctx_content_cov_coeff: float = 0.0,
        augment: ClipAugment | None = None,
        probe: ProbeConfig | None = None,
        probe_seed: int = 0,
    ) -> None:
        super().__init__(model=model, optim=optim)
        if not isinstance(model, VJEPA):
            raise ConfigError(f"task vjepa trains a V-JEPA model (vjepa-*), got {type(model).__name__}")
        if not isinstance(optim, OptimConfig) or optim.name != "adamw":
            raise ConfigError(
                "task vjepa uses one AdamW optimiser (optim.name: adamw), as the official init_opt"
            )
        self.masks = [
            as_config(MaskConfig, m, f"task.masks[{i}]")
            for i, m in enumerate(MULTIBLOCK if masks is None else masks)
        ]
        if not self.masks or len(self.masks) > model.config.num_mask_tokens:
            raise ConfigError(
                f"task.masks names {len(self.masks)} mask types; the model has "
                f"{model.config.num_mask_tokens} mask tokens (model.num_mask_tokens)"
            )
        for i, mask in enumerate(self.masks):
            mask.check(f"task.masks[{i}]")
        if clip_grad is not None and clip_grad <= 0:
            raise ConfigError(f"task.clip_grad must be > 0 or null, got {clip_grad}")
        weights = {"reg_coeff": reg_coeff, "ctx_std_coeff": ctx_std_coeff, "ctx_cov_coeff": ctx_cov_coeff,
                   "ctx_content_std_coeff": ctx_content_std_coeff,
                   "ctx_content_cov_coeff": ctx_content_cov_coeff}  # fmt: skip
        if loss_exp <= 0 or min(weights.values()) < 0:
            raise ConfigError(f"task.loss_exp must be > 0 and {', '.join(weights)} >= 0, got {loss_exp}, "
                              f"{', '.join(str(w) for w in weights.values())}")  # fmt: skip
        self.start_lr, self.final_lr, self.final_weight_decay = start_lr, final_lr, final_weight_decay
        self.ema, self.ipe_scale, self.clip_grad = ema, ipe_scale, clip_grad
        self.loss_exp, self.weights = loss_exp, weights  # the regularisers' weights, by jepa_terms' names
        self.augment = None if augment is None else as_config(ClipAugment, augment, "task.augment")
        if self.augment is not None:
            self.augment.check("task.augment")
        self.probe_config = as_config(ProbeConfig, probe or ProbeConfig(), "task.probe")
        self.probe_config.check()
        self.probe_seed = probe_seed
        self._probes: dict[tuple[str, str, str], nn.Module] = {}  # not submodules: not checkpointed
        self._encoders: dict[str, nn.Module] = {}
        self._last_momentum = self.ema[0]

    @property
    def vjepa(self) -> VJEPA:
        """``self.model``, typed (checked in ``__init__``)."""
        assert isinstance(self.model, VJEPA)
        return self.model

    # -- the schedules, the optimiser and the EMA ----------------------------------------------
    def schedules(self) -> VJEPASchedules:
        optim = self.optim
        assert isinstance(optim, OptimConfig)
        schedules = VJEPASchedules(
            total_steps=self.trainer.max_steps,
            warmup_steps=optim.warmup_steps,
            start_lr=self.start_lr,
            lr=optim.lr,
            final_lr=self.final_lr,
            weight_decay=optim.weight_decay,
            final_weight_decay=self.final_weight_decay,
            ema=self.ema,
            ipe_scale=self.ipe_scale,
        )
        schedules.check()
        return schedules

    def configure_optimizers(self) -> Any:
        optim = self.optim
        assert isinstance(optim, OptimConfig)
        groups = decay_groups(self.vjepa.encoder, self.vjepa.predictor)
        optimizer = torch.optim.AdamW(groups, lr=optim.lr, betas=optim.betas, eps=1e-8)
        # the official schedulers step once before the first update: optimiser steps count from 1
        scheduler = StepScheduler(optimizer, self.schedules(), offset=1)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(
        self, optimizer: torch.optim.Optimizer, gradient_clip_val: float | int | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:  # fmt: skip
        """Official: encoder and predictor clipped to ``clip_grad`` each, after the warm-up."""
        if gradient_clip_val is not None:  # trainer.gradient_clip_val: over everything, as Lightning does
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        optim = self.optim
        assert isinstance(optim, OptimConfig)
        if self.clip_grad is not None and self.global_step >= optim.warmup_steps:
            torch.nn.utils.clip_grad_norm_(self.vjepa.encoder.parameters(), self.clip_grad)
            torch.nn.utils.clip_grad_norm_(self.vjepa.predictor.parameters(), self.clip_grad)

    def on_train_start(self) -> None:
        self._momentum = self.schedules().momentum_at

    def optimizer_step(
        self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None
    ) -> None:
        """The optimiser step k, then the EMA ``target = m_k target + (1 - m_k) encoder``.

        Here rather than in ``on_train_batch_end``: Lightning's checkpoint callback runs before that
        hook, so a checkpoint of step k would hold the target of step k - 1 and a resumed run would
        drift. Lightning counts the step as done only after this hook returns: k = global_step + 1.
        """
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        momentum = self._momentum(self.global_step + 1)
        ema_update(self.vjepa.target_encoder, self.vjepa.encoder, momentum)
        self._last_momentum = momentum

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.log("train/ema_momentum", self._last_momentum, batch_size=1)

    # -- the loss --------------------------------------------------------------------------------
    def _forward(self, clips: torch.Tensor, step: int) -> tuple[JEPAOutput, dict[str, torch.Tensor]]:
        grid = check_clips(clips, self.vjepa.config.encoder())
        masks_enc, masks_pred = sample_masks(grid, self.masks, clips.shape[0], step=step)
        device = clips.device
        out = self.vjepa(clips, [m.to(device) for m in masks_enc], [m.to(device) for m in masks_pred])
        return out, jepa_terms(out, loss_exp=self.loss_exp, **self.weights)

    def loss_terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        clips = batch["input"]
        if self.augment is not None:  # the generator's seed comes from the engine's per-step seed
            generator = torch.Generator().manual_seed(int(torch.randint(2**31 - 1, ())))
            clips = augment_clips(clips, self.augment, generator)
        return self._forward(clips, self.global_step)[1]

    def metrics(self, batch: Batch) -> dict[str, torch.Tensor]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(EVAL_MASK_SEED)
            out, terms = self._forward(batch["input"], 0)
        values = {"loss": torch.stack(list(terms.values())).sum(), **terms}
        # the label-free collapse monitor (RankMe): how many directions the targets use (the target
        # encoder's tokens; each tubelet's pixels with model.target pixels) and the context encoder's
        # tokens of the first mask type
        values["target_rank"] = torch.tensor(effective_rank(out.target.flatten(0, 1)))
        values["context_rank"] = torch.tensor(effective_rank(out.context[0].flatten(0, 1)))
        if self.trainer.testing and self._probes:
            values |= self._probe_accuracies(batch)
        return values

    # -- frozen evaluation ---------------------------------------------------------------------
    def _label_keys(self) -> list[str]:
        names = getattr(getattr(self.trainer, "datamodule", None), "label_names", None)
        return list(names) if isinstance(names, dict) else []

    def floor_encoder(self) -> VideoViT:
        """The floor: a randomly initialised encoder of the same architecture, its init drawn from
        ``probe_seed`` alone (the same for every run of a seed), in eval mode."""
        floor = VideoViT(self.vjepa.config.encoder())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.probe_seed)
            floor.reset_parameters()
        return floor.eval()

    def on_test_start(self) -> None:
        data: Any = getattr(self.trainer, "datamodule", None)
        keys = self._label_keys()
        if not keys or not hasattr(data, "probe_dataloader"):
            return  # a dataset without labels: the test reports the loss only
        self._encoders = {"probe": self.vjepa.target_encoder, "floor": self.floor_encoder().to(self.device)}
        classes = {k: len(v) for k, v in data.label_names.items()}
        frame = self.probe_config.image_frame
        with torch.inference_mode(False), torch.enable_grad():  # Lightning tests in inference mode
            for name, encoder in self._encoders.items():
                self._fit_probes(name, "", encoder, data.probe_dataloader(), keys, classes)
                if frame is not None:  # the image evaluation: probes of still clips
                    stills = ({**b, "input": still_clips(b["input"], frame)} for b in data.probe_dataloader())
                    self._fit_probes(name, "image-", encoder, stills, keys, classes)

    def _fit_probes(
        self,
        name: str,
        prefix: str,
        encoder: nn.Module,
        batches: Any,
        keys: list[str],
        classes: dict[str, int],
    ) -> None:
        across = self.probe_config.attend_across_segments and not prefix  # still clips have no segments
        with torch.no_grad():
            feats, labels = extract(encoder, batches, keys, self.device, segments=across)
        for kind in KINDS:
            for key in keys:
                seed = self.probe_seed + 1000 * KINDS.index(kind) + keys.index(key) + (500 if prefix else 0)
                self._probes[(name, prefix + kind, key)] = fit_probe(
                    kind, feats, labels[key], classes[key], self.probe_config, seed=seed, device=self.device
                )

    def _probe_accuracies(self, batch: Batch) -> dict[str, torch.Tensor]:
        config, values = self.probe_config, {}
        views = evaluation_views(batch, config.num_views, config.view_shift)  # (B, V, C, T, H, W)
        segments = batch["segments"].shape[1] if config.attend_across_segments and "segments" in batch else 1
        for name, encoder in self._encoders.items():
            feats = encoder(views.flatten(0, 1))  # (B * V, N, D)
            # (B, V / segments, segments * N, D): each spatial view with its segments' tokens
            per_view = across_segments(feats.unflatten(0, views.shape[:2]), segments)
            stills = (
                None
                if config.image_frame is None
                else encoder(still_clips(batch["input"], config.image_frame))
            )
            for (which, kind, key), probe in self._probes.items():
                if which != name:
                    continue
                if kind.startswith("image-"):
                    logits = probe(stills)  # (B, K)
                else:
                    logits = probe(per_view.flatten(0, 1)).unflatten(0, per_view.shape[:2])  # (B, V', K)
                    logits = average_views(logits, config.average)
                values[f"{name}/{kind}/{key}_acc"] = (logits.argmax(-1) == batch[key]).float().mean()
        return values

    @torch.no_grad()
    def report_figures(self, datamodule: L.LightningDataModule, out_dir: Path) -> dict[str, Path]:
        """PCA colours of the target encoder's patch features; the attentive probe's attention over
        the tokens of four test clips (the motion probe, else the first label's)."""
        batch = next(iter(datamodule.test_dataloader()))
        clips = batch["input"][:4].to(self.device)
        grid = check_clips(clips, self.vjepa.config.encoder())
        features = self.vjepa.target_encoder(clips[:3]).cpu()  # (3, N, D)
        pca = plot_feature_pca(
            clips[:3].cpu(), features, grid, self.vjepa.config.tubelet_size, out_dir / "pca.png"
        )
        figures = {"Target-encoder patch features: first 3 principal components as RGB, per tubelet": pca}
        label_names = getattr(datamodule, "label_names", {})
        key = "motion" if "motion" in label_names else next(iter(label_names), "")
        probe = self._probes.get(("probe", "attentive", key))
        if probe is None:
            return figures
        with capture(probe) as rec:
            preds = probe(self.vjepa.target_encoder(clips)).argmax(-1)
        # a standardised probe wraps the classifier, so its layer names gain a prefix
        name = next(n for n in rec if n.endswith("pooler.cross_block.attn"))
        weights = rec[name].mean(1)[:, 0]  # (B, N): one query, head mean
        maps = weights.view(-1, *grid).repeat_interleave(
            self.vjepa.config.tubelet_size, dim=1
        )  # (B, T, h, w)
        names = label_names[key]
        titles = [
            f"{key}: {names[int(t)]}\npred: {names[int(p)]}"
            for t, p in zip(batch[key][:4], preds.cpu(), strict=True)
        ]
        path = plot_video_attention(
            clips.cpu(),
            maps.cpu(),
            None,
            out_dir / "probe_attention.png",
            titles=titles,
            name="attention weight",
            own_range=True,
        )
        return figures | {
            f"Attentive {key} probe: its query's attention over the clip's tokens (head mean)": path
        }
